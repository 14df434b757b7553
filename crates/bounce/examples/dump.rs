//! Prints the parse of each file given on the command line as one JSON line.
fn main() {
    for path in std::env::args().skip(1) {
        let raw = std::fs::read(&path).expect("read");
        let r = petrel_bounce::parse(&raw);
        println!("{path}: {}", serde_json::to_string(&r).expect("json"));
    }
}
