//! The tables of every analysis as CSV, shared by the CLI and the browser.

use crate::did::{Cell, DidResult};

const CELL_HEADER: [&str; 8] = [
    "cohort",
    "checkpoint",
    "att",
    "memorisation",
    "se",
    "lower",
    "upper",
    "significant",
];

fn csv_string(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn cell_rows(cells: &[Cell]) -> Vec<Vec<String>> {
    cells
        .iter()
        .map(|c| {
            vec![
                c.cohort.to_string(),
                c.checkpoint.to_string(),
                c.att.to_string(),
                c.memorisation.to_string(),
                c.se.to_string(),
                c.lower.to_string(),
                c.upper.to_string(),
                c.significant.to_string(),
            ]
        })
        .collect()
}

/// `(file name, CSV)` for every table of a profile: `att_gt.csv`
/// (`cohort,checkpoint,att,memorisation,se,lower,upper,significant`), `event.csv`
/// (`event,att,memorisation,se,lower,upper`), `instantaneous.csv` and `residual.csv`
/// (as `att_gt.csv`), and `simple.csv`
/// (`cohort,checkpoint,difference,memorisation,se,lower,upper,significant`).
pub fn tables(result: &DidResult) -> Result<Vec<(&'static str, String)>, csv::Error> {
    let event = csv_string(
        &["event", "att", "memorisation", "se", "lower", "upper"],
        result.event.iter().map(|a| {
            vec![
                a.key.to_string(),
                a.att.to_string(),
                a.memorisation.to_string(),
                a.se.to_string(),
                a.lower.to_string(),
                a.upper.to_string(),
            ]
        }),
    )?;
    let simple = csv_string(
        &[
            "cohort",
            "checkpoint",
            "difference",
            "memorisation",
            "se",
            "lower",
            "upper",
            "significant",
        ],
        result.simple.iter().map(|s| {
            vec![
                s.cohort.to_string(),
                s.checkpoint.to_string(),
                s.difference.to_string(),
                s.memorisation.to_string(),
                s.se.to_string(),
                s.lower.to_string(),
                s.upper.to_string(),
                s.significant.to_string(),
            ]
        }),
    )?;
    Ok(vec![
        (
            "att_gt.csv",
            csv_string(&CELL_HEADER, cell_rows(&result.cells))?,
        ),
        ("event.csv", event),
        (
            "instantaneous.csv",
            csv_string(&CELL_HEADER, cell_rows(&result.instantaneous))?,
        ),
        (
            "residual.csv",
            csv_string(&CELL_HEADER, cell_rows(&result.residual))?,
        ),
        ("simple.csv", simple),
    ])
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "undefined".to_string(), |x| x.to_string())
}

/// `(file name, CSV)` for a counterfactual ensemble: `counterfactual.csv`
/// (`instance,mem,in_mean,out_mean,n_in,n_out,se,text`, one row per training text in
/// instance order; `undefined` where no model, or every model, trained on it) and
/// `influence.csv` (`probe,instance,infl,in_mean,out_mean,n_in,n_out,se`: the
/// influence of every training text on every probe).
pub fn counterfactual_tables(
    result: &crate::counterfactual::CounterfactualResult,
) -> Result<Vec<(&'static str, String)>, csv::Error> {
    let mem = csv_string(
        &[
            "instance", "mem", "in_mean", "out_mean", "n_in", "n_out", "se", "text",
        ],
        result.instances.iter().map(|i| {
            vec![
                i.instance.to_string(),
                opt(i.mem.diff),
                opt(i.mem.in_mean),
                opt(i.mem.out_mean),
                i.mem.n_in.to_string(),
                i.mem.n_out.to_string(),
                opt(i.mem.se),
                i.text.clone(),
            ]
        }),
    )?;
    let influence = csv_string(
        &[
            "probe", "instance", "infl", "in_mean", "out_mean", "n_in", "n_out", "se",
        ],
        result.influence.iter().flat_map(|p| {
            p.by_unit.iter().zip(&result.instances).map(move |(c, i)| {
                vec![
                    p.probe.to_string(),
                    i.instance.to_string(),
                    opt(c.diff),
                    opt(c.in_mean),
                    opt(c.out_mean),
                    c.n_in.to_string(),
                    c.n_out.to_string(),
                    opt(c.se),
                ]
            })
        }),
    )?;
    Ok(vec![
        ("counterfactual.csv", mem),
        ("influence.csv", influence),
    ])
}

/// `(file name, CSV)` for an influence run: `influence.csv` (`test,train,method,score`,
/// every test text x training text x method, methods by their keys `tracin`,
/// `tracin_last`, `tracin_we`, `tracin_we_topk`) and `tokens.csv`
/// (`test,train,token,score`: the TracIn-WE term of every shared token).
pub fn influence_tables(
    result: &crate::influence::InfluenceResult,
) -> Result<Vec<(&'static str, String)>, csv::Error> {
    let scores = csv_string(
        &["test", "train", "method", "score"],
        result.tests.iter().flat_map(|t| {
            t.methods.iter().flat_map(move |m| {
                result.train.iter().zip(&m.scores).map(move |(tr, s)| {
                    vec![
                        t.test.to_string(),
                        tr.to_string(),
                        m.method.key().to_string(),
                        s.to_string(),
                    ]
                })
            })
        }),
    )?;
    let tokens = csv_string(
        &["test", "train", "token", "score"],
        result.tests.iter().flat_map(|t| {
            t.tokens.iter().map(move |k| {
                vec![
                    t.test.to_string(),
                    k.train.to_string(),
                    k.token.to_string(),
                    k.score.to_string(),
                ]
            })
        }),
    )?;
    Ok(vec![("influence.csv", scores), ("tokens.csv", tokens)])
}

/// `deletion.csv` of a case deletion: `method,k,draw,test,loss_before,loss_after`
/// (`method` a method's key or `random`).
pub fn deletion_table(result: &crate::influence::DeletionResult) -> Result<String, csv::Error> {
    csv_string(
        &["method", "k", "draw", "test", "loss_before", "loss_after"],
        result.rows.iter().map(|r| {
            vec![
                r.removal.key().to_string(),
                r.k.to_string(),
                r.draw.to_string(),
                r.test.to_string(),
                r.loss_before.to_string(),
                r.loss_after.to_string(),
            ]
        }),
    )
}

/// `instances.csv` of an influence run: `instance,split,tokens,text`, `tokens` the ids
/// the model reads (space separated, BOS first), `split` `train` or `heldout`.
pub fn influence_instances(corpus: &mnemo_core::Corpus) -> Result<String, csv::Error> {
    let held: std::collections::HashSet<u32> = corpus.heldout.iter().copied().collect();
    csv_string(
        &["instance", "split", "tokens", "text"],
        corpus.instances.iter().map(|i| {
            vec![
                i.id.to_string(),
                if held.contains(&i.id) {
                    "heldout"
                } else {
                    "train"
                }
                .to_string(),
                i.tokens
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                i.text.clone(),
            ]
        }),
    )
}

/// `checkpoints.csv`: `step,learning_rate,file` for `(step, eta_t, file name)` rows.
pub fn checkpoints_table(rows: &[(usize, f64, String)]) -> Result<String, csv::Error> {
    csv_string(
        &["step", "learning_rate", "file"],
        rows.iter()
            .map(|(s, lr, f)| vec![s.to_string(), lr.to_string(), f.clone()]),
    )
}

/// A mitigation run's tables: `mitigation.csv` (one row per method and setting;
/// memorised and accuracy as fractions) and `sequences.csv` (per measured example).
pub fn mitigation_tables(
    results: &[crate::unlearn::MethodResult],
) -> Result<Vec<(&'static str, String)>, csv::Error> {
    let table = csv_string(
        &[
            "method",
            "kind",
            "setting",
            "memorised_before",
            "memorised_after",
            "clean_after",
            "accuracy_before",
            "accuracy_after",
            "perplexity_after",
            "seconds",
        ],
        results.iter().map(|r| {
            vec![
                r.method.name().to_string(),
                r.method.kind().name().to_string(),
                r.settings.label(),
                format!("{:.6}", r.memorised_before),
                format!("{:.6}", r.memorised_after),
                r.clean_after.map_or(String::new(), |c| format!("{c:.6}")),
                format!("{:.6}", r.accuracy_before),
                format!("{:.6}", r.accuracy_after),
                format!("{:.6}", r.perplexity_after),
                format!("{:.3}", r.seconds),
            ]
        }),
    )?;
    let sequences = csv_string(
        &["sequence", "method", "memorised_before", "memorised_after"],
        results.iter().flat_map(|r| {
            r.sequences.iter().map(move |(id, b, a)| {
                vec![
                    id.to_string(),
                    format!("{} {}", r.method.name(), r.settings.label()),
                    b.to_string(),
                    a.to_string(),
                ]
            })
        }),
    )?;
    Ok(vec![
        ("mitigation.csv", table),
        ("sequences.csv", sequences),
    ])
}
