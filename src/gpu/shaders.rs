//! Shader sources, embedded at build time, with one tiny preprocessing step: a line
//! `//!include NAME` is replaced by shaders/NAME.wgsl (WGSL has no includes; the RNG and
//! indexing helpers are shared this way).

include!(concat!(env!("OUT_DIR"), "/shader_files.rs"));

/// Raw text of shaders/NAME.wgsl.
pub fn raw(name: &str) -> Option<&'static str> {
    SHADER_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// Source of shaders/NAME.wgsl with its includes expanded (each file at most once).
pub fn source(name: &str) -> anyhow::Result<String> {
    let mut seen = Vec::new();
    expand(name, &mut seen)
}

fn expand(name: &str, seen: &mut Vec<String>) -> anyhow::Result<String> {
    let text = raw(name).ok_or_else(|| anyhow::anyhow!("no shader named {name:?} in shaders/"))?;
    seen.push(name.to_string());
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(inc) = line.trim().strip_prefix("//!include ") {
            let inc = inc.trim();
            if !seen.iter().any(|s| s == inc) {
                out += &expand(inc, seen)?;
            }
        } else {
            out += line;
            out.push('\n');
        }
    }
    Ok(out)
}

/// Names of all shader files, for validation and listing.
pub fn names() -> impl Iterator<Item = &'static str> {
    SHADER_FILES.iter().map(|(n, _)| *n)
}
