#[stowage::test(database = "postgres")]
async fn unknown(pool: sqlx::AnyPool) {
    drop(pool);
}

fn main() {}
