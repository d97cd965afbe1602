//! `cfg(driver)`: at least one database driver feature is enabled.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(driver)");
    let drivers = ["POSTGRES", "MYSQL", "SQLITE", "ANY"];
    if drivers
        .iter()
        .any(|d| std::env::var_os(format!("CARGO_FEATURE_{d}")).is_some())
    {
        println!("cargo::rustc-cfg=driver");
    }
}
