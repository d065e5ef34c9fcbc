//! Builds the test guests (`tests/guests/*`) and tells the tests where they are.

#[path = "../runtime/build/guests.rs"]
mod guests;

fn main() {
    let built = guests::build(&["sandport-guest-hostile"], &["tests/guests"]);
    println!(
        "cargo:rustc-env=SANDPORT_HOSTILE_WASM={}",
        built[0].display()
    );
}
