//! `data-host` binary (commands arrive with the HTTP service).

fn main() {
    println!("data-host {}", env!("CARGO_PKG_VERSION"));
}
