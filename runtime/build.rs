//! `cfg(driver)`: at least one database driver feature is on (`postgres`,
//! `mysql`, `sqlite`, `any`), for the items that need one, written once
//! here instead of as an `any(…)` of four features at each of them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(driver)");
    let drivers = ["POSTGRES", "MYSQL", "SQLITE", "ANY"];
    if drivers
        .iter()
        .any(|driver| std::env::var_os(format!("CARGO_FEATURE_{driver}")).is_some())
    {
        println!("cargo::rustc-cfg=driver");
    }
}
