//! The `stance` command line: a thin layer over the library.

mod cli;
mod commands;

fn main() {
    std::process::exit(cli::run());
}
