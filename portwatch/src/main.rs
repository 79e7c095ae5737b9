//! `portwatch`: the command line lives in the library (`portwatch::cli`).

fn main() -> std::process::ExitCode {
    portwatch::cli::main()
}
