//! The geometry tables as CSV, shared by the CLI and the browser: `training.csv`
//! (`point,x0,..,true_lid,lpca,mle,flipd,normal_bundle,class`), `samples.csv`
//! (`sample,x0,..,flipd,copy_of`) and `flipd_curve.csv` (`point,t0,flipd`); an undefined
//! value is an empty field.

use super::GeometryResult;

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn write(header: Vec<String>, rows: Vec<Vec<String>>) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for r in rows {
        w.write_record(&r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn coords(d: usize) -> impl Iterator<Item = String> {
    (0..d).map(|c| format!("x{c}"))
}

/// `(file name, CSV)` for each table of a result.
pub fn tables(r: &GeometryResult) -> Result<Vec<(&'static str, String)>, csv::Error> {
    let d = r.dim;
    let mut h: Vec<String> = vec!["point".into()];
    h.extend(coords(d));
    h.extend(
        ["true_lid", "lpca", "mle", "flipd", "normal_bundle", "class"]
            .iter()
            .map(|s| s.to_string()),
    );
    let rows = r
        .train
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = vec![i.to_string()];
            row.extend(p.x.iter().map(|v| v.to_string()));
            row.extend([
                p.true_lid.to_string(),
                opt(p.lpca),
                opt(p.mle),
                p.flipd.to_string(),
                opt(p.normal_bundle),
                p.class.key().to_string(),
            ]);
            row
        })
        .collect();
    let training = write(h, rows)?;
    let mut h: Vec<String> = vec!["sample".into()];
    h.extend(coords(d));
    h.extend(["flipd".to_string(), "copy_of".to_string()]);
    let rows = r
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = vec![i.to_string()];
            row.extend(s.x.iter().map(|v| v.to_string()));
            row.push(s.flipd.to_string());
            row.push(s.copy_of.map(|j| j.to_string()).unwrap_or_default());
            row
        })
        .collect();
    let samples = write(h, rows)?;
    let rows = r
        .curve
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.iter()
                .zip(&r.curve_t0)
                .map(move |(v, t)| vec![i.to_string(), t.to_string(), v.to_string()])
        })
        .collect();
    let curve = write(vec!["point".into(), "t0".into(), "flipd".into()], rows)?;
    Ok(vec![
        ("training.csv", training),
        ("samples.csv", samples),
        ("flipd_curve.csv", curve),
    ])
}

/// `lid.csv` (`point,lid`) of pointwise values, undefined ones empty.
pub fn lid_table(values: &[Option<f64>]) -> Result<String, csv::Error> {
    write(
        vec!["point".into(), "lid".into()],
        values
            .iter()
            .enumerate()
            .map(|(i, v)| vec![i.to_string(), opt(*v)])
            .collect(),
    )
}
