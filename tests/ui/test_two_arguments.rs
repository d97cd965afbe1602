#[stowage::test(migrations = "../../../../tests/fixtures/objects")]
async fn two(a: sqlx::AnyPool, b: sqlx::AnyPool) {
    drop((a, b));
}

fn main() {}
