fn main() {
    std::process::exit(backstop::cli::run());
}
