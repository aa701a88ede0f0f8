fn main() {
    eprintln!("loadgen: not built yet (see issue 3)");
    std::process::exit(2);
}
