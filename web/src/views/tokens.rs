//! Texts token by token: a prefix, the true continuation, and one or more model
//! continuations coloured by whether each token matches the truth. Every label is put
//! in as text (yew escapes it), never as HTML.

use yew::prelude::*;

/// The label of a token id, `?` for an id outside the vocabulary.
pub fn label(labels: &[String], id: u32) -> String {
    labels
        .get(id as usize)
        .cloned()
        .unwrap_or_else(|| "?".into())
}

/// One text: `prefix` then the true `target` on the first line (marked token by token
/// against the only model line when there is one), then each `(who, generated)` line
/// behind an invisible copy of the prefix so that the columns line up.
pub fn token_lines(
    labels: &[String],
    prefix: &[u32],
    target: &[u32],
    lines: &[(&str, &[u32])],
    exact: bool,
) -> Html {
    let prefix: String = prefix.iter().map(|&t| label(labels, t)).collect();
    let marked = |own: &[u32], other: Option<&[u32]>| {
        own.iter()
            .enumerate()
            .map(|(i, &t)| {
                let class = match other {
                    None => None,
                    Some(o) if o.get(i) == Some(&t) => Some("hit"),
                    Some(_) => Some("miss"),
                };
                html! { <span class={classes!("tok", class)}>{ label(labels, t) }</span> }
            })
            .collect::<Html>()
    };
    let reference = match lines {
        [(_, only)] => Some(*only),
        _ => None,
    };
    html! {
        <div class="tokens" data-exact={exact.to_string()}>
            <div><span class="who">{ "text" }</span><span class="prefix">{ prefix.clone() }</span>{ marked(target, reference) }</div>
            { for lines.iter().map(|(who, generated)| html! {
                <div><span class="who">{ *who }</span><span class="prefix ghost" aria-hidden="true">{ prefix.clone() }</span>{ marked(generated, Some(target)) }</div>
            }) }
        </div>
    }
}
