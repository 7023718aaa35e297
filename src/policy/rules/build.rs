//! Build tools and test runners that run code from files they find by name (`make`
//! reads the Makefile, npm the scripts of package.json, cargo build.rs, pytest
//! conftest.py): such code is unseen unless the same line wrote it.

use super::common::*;

/// Files (by name) from which a program runs code without naming them: `make` reads the
/// Makefile, npm the scripts of package.json, cargo build.rs, pytest conftest.py.
const RUNS_CODE_FROM: &[(&[&str], &[&str])] = &[
    (&["make", "gmake"], &["Makefile", "makefile", "GNUmakefile"]),
    (
        &["npm", "pnpm", "yarn", "bun", "npx"],
        &["package.json", ".npmrc"],
    ),
    (
        &["cargo"],
        &["build.rs", "Cargo.toml", "config.toml", ".cargo"],
    ),
    (
        &["pytest", "py.test"],
        &["conftest.py", "pytest.ini", "setup.cfg"],
    ),
    (&["cmake"], &["CMakeLists.txt"]),
    (&["git"], &[".git", ".gitattributes", ".gitconfig"]),
];

/// A program that runs code from a file the same line wrote (`printf 'all:\n\trm -rf ~'
/// > Makefile; make`).
pub(super) fn written_config_run(
    analyzer: &mut Analyzer<'_>,
    index: usize,
    name: &str,
    args: &[Word],
) {
    let Some((_, files)) = RUNS_CODE_FROM.iter().find(|(p, _)| p.contains(&name)) else {
        return;
    };
    let hit = analyzer
        .created
        .iter()
        .find(|c| c.comps.iter().any(|comp| files.contains(&comp.as_str())));
    if let Some(place) = hit {
        let what = place.display();
        analyzer.find(
            Some(index),
            Decision::Approve,
            "exec.written_then_run",
            format!("{name} runs code from {what}, which the same line wrote"),
            false,
        );
    }
    let _ = args;
}
