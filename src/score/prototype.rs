//! Zero-shot head: each label is the mean vector of short descriptions of it, written in
//! several languages; a sentence's logits are its cosine similarity to each prototype,
//! divided by a temperature fitted on validation data.

use ndarray::{Array2, ArrayView2};

use super::{Features, Head, HeadFile, LinearHead, affine_softmax};
use crate::data::Task;

#[derive(Debug, Clone)]
pub struct PrototypeHead(pub LinearHead);

impl Head for PrototypeHead {
    fn task(&self) -> Task {
        self.0.0.task
    }
    fn kind(&self) -> &'static str {
        "prototype"
    }
    fn encoder(&self) -> &str {
        &self.0.0.encoder
    }
    fn features(&self) -> Features {
        Features::Sentence
    }
    fn predict_proba(&self, x: ArrayView2<f32>, _texts: &[&str]) -> Array2<f32> {
        // Vectors and prototypes are unit length, so the dot product is the cosine.
        affine_softmax(&self.0.0, x)
    }
}

/// Label descriptions, in label order, in Italian, English, French, German and Spanish.
pub fn descriptions(task: Task) -> Vec<Vec<String>> {
    let d: [&[&str]; 3] = match task {
        Task::Stance => [
            &[
                "Servono regole vincolanti, controlli e sanzioni per governare l'intelligenza artificiale e le piattaforme digitali.",
                "La regolamentazione protegge i cittadini dai rischi della tecnologia.",
                "We need binding rules, oversight and safety requirements for AI and digital technology.",
                "Open models and unregulated technology pose serious risks and must be restricted.",
                "Il faut encadrer l'intelligence artificielle par des lois, des audits et une autorité de contrôle.",
                "Wir brauchen strenge Regeln, Aufsicht und Verbote für künstliche Intelligenz.",
                "Es necesario regular la inteligencia artificial con normas estrictas y control de las autoridades.",
                "Export controls and national sovereignty over technology protect security.",
            ],
            &[
                "La riunione si è tenuta martedì e vi hanno partecipato diversi rappresentanti.",
                "The company reported revenue figures for the quarter.",
                "Le projet comprend plusieurs centres de données et sera achevé en 2026.",
                "Die Konferenz findet im Oktober in Berlin statt.",
                "El informe describe las cifras de inversión del sector tecnológico.",
                "Il documento elenca date, nomi e numeri senza prendere posizione.",
            ],
            &[
                "L'innovazione deve essere libera: meno regole e meno burocrazia per le imprese tecnologiche.",
                "L'eccesso di regolamentazione frena l'innovazione e soffoca le startup.",
                "Open source, open collaboration and the free flow of data drive innovation.",
                "Over-regulation is a brake on progress; cut red tape and let technology flourish.",
                "Il faut simplifier les règles et laisser innover librement les entreprises.",
                "Offene Modelle und freier Datenaustausch fördern Innovation; Überregulierung bremst.",
                "La apertura y la cooperación tecnológica sin barreras impulsan la innovación.",
                "Sharing technology openly across borders benefits everyone.",
            ],
        ],
        Task::Sentiment => [
            &[
                "È un disastro, una minaccia e un fallimento preoccupante.",
                "This is terrible, a failure and a serious threat.",
                "C'est une catastrophe inquiétante et un échec.",
                "Das ist ein schlimmer Misserfolg und eine Bedrohung.",
                "Es un fracaso terrible y preocupante.",
            ],
            &[
                "La riunione si terrà martedì alle dieci.",
                "The report was published on Monday.",
                "La réunion aura lieu mardi.",
                "Die Sitzung findet am Dienstag statt.",
                "La reunión se celebrará el martes.",
            ],
            &[
                "È un grande successo, una notizia splendida e piena di speranza.",
                "This is a great success and wonderful news.",
                "C'est un excellent succès, une très bonne nouvelle.",
                "Das ist ein großartiger Erfolg und eine tolle Nachricht.",
                "Es un gran éxito y una noticia maravillosa.",
            ],
        ],
    };
    d.iter().map(|l| l.iter().map(|s| s.to_string()).collect()).collect()
}

/// Builds a prototype head from embedded descriptions (one list of unit vectors per label).
pub fn build(task: Task, encoder: &str, described: &[Vec<Vec<f32>>], descriptions: Vec<Vec<String>>, temperature: f32) -> HeadFile {
    let dim = described[0][0].len();
    let weights = described
        .iter()
        .map(|vs| {
            let mut m = vec![0f32; dim];
            for v in vs {
                m.iter_mut().zip(v).for_each(|(a, b)| *a += b);
            }
            crate::encode::normalize(&mut m);
            m
        })
        .collect();
    HeadFile {
        format: super::HEAD_FORMAT.into(),
        version: super::HEAD_VERSION,
        kind: "prototype".into(),
        task,
        labels: task.labels().iter().map(|s| s.to_string()).collect(),
        encoder: encoder.into(),
        dim,
        features: Features::Sentence,
        weights,
        bias: vec![0.0; 3],
        temperature,
        descriptions: Some(descriptions),
        training: Default::default(),
        validation: None,
        lexical: None,
        article: None,
    }
}
