// The stamp's default value; the test build makes a "v2" flavour by setting STAMP_VALUE.
fn main() {
    println!("cargo:rerun-if-env-changed=STAMP_VALUE");
    let value = std::env::var("STAMP_VALUE").unwrap_or_else(|_| "v1".to_string());
    println!("cargo:rustc-env=STAMP_VALUE={value}");
}
