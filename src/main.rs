//! The `stance` command line: a thin layer over the library.

mod batch_cmd;
mod cli;
mod commands;

fn main() {
    std::process::exit(cli::run());
}
