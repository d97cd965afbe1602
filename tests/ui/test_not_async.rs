#[stowage::test(migrations = "../../../../tests/fixtures/objects")]
fn not_async(pool: sqlx::AnyPool) {
    drop(pool);
}

fn main() {}
