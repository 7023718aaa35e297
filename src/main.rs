//! The `aisopod` command: parse the arguments, run, map the outcome to an exit code.

fn main() -> std::process::ExitCode {
    aisopod::cli::main()
}
