// Embeds every shaders/*.wgsl into the binary, so kernels need no files at run time and a new
// shader file needs no registration by hand.
use std::{env, fs, path::Path};

fn main() {
    // the variable at run time, not env!(): a build script binary may be reused for another
    // checkout of the same package (a shared target folder), and must read that checkout's files
    let root = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&root).join("shaders");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("shaders/ folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    names.sort();
    let mut out = String::from("/// Every WGSL file in shaders/, by file stem.\npub static SHADER_FILES: &[(&str, &str)] = &[\n");
    for n in &names {
        println!("cargo:rerun-if-changed={}", dir.join(n).display());
        let stem = n.trim_end_matches(".wgsl");
        out += &format!(
            "    ({stem:?}, include_str!({:?})),\n",
            dir.join(n).display().to_string()
        );
    }
    out += "];\n";
    fs::write(
        Path::new(&env::var("OUT_DIR").unwrap()).join("shader_files.rs"),
        out,
    )
    .unwrap();
}
