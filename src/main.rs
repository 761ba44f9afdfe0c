use clap::Parser;

fn main() {
    let cli = instancectl::cli::Cli::parse();
    std::process::exit(instancectl::run(cli));
}
