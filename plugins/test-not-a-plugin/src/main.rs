fn main() {
    println!("not a Strom plugin");
}
