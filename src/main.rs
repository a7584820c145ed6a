//! `behavd`: the command-line entry point.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
