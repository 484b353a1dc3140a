fn main() -> std::process::ExitCode {
    xflow_sim::cli::main()
}
