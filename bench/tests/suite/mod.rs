//! The suite the test-suite benchmark runs on both sides: a hundred tests,
//! each given a migrated database by `$attr` (`#[stowage::test]` or
//! `#[sqlx::test]`), each writing a row to two tables and reading one back.
//! `scripts/bench suite` runs ten of them (`…::t0`) or all hundred.

/// `backends!(crate, pg, my, lite)`: modules `pg`, `my` and `lite` of the
/// hundred tests each, given their database by `crate::test` with the
/// migrator at each path.
macro_rules! backends {
    ($krate:ident, $pg:tt, $my:tt, $lite:tt) => {
        mod pg {
            tests!($krate::test(migrator = $pg), sqlx::PgPool);
        }
        mod my {
            tests!($krate::test(migrator = $my), sqlx::MySqlPool);
        }
        mod lite {
            tests!($krate::test(migrator = $lite), sqlx::SqlitePool);
        }
    };
}

/// `tests!(attribute, pool type)`: the hundred tests, `t00` to `t99`.
macro_rules! tests {
    ($attr:meta, $pool:ty) => {
        tests!(@ $attr, $pool;
            t00 t01 t02 t03 t04 t05 t06 t07 t08 t09 t10 t11 t12 t13 t14 t15 t16 t17 t18 t19
            t20 t21 t22 t23 t24 t25 t26 t27 t28 t29 t30 t31 t32 t33 t34 t35 t36 t37 t38 t39
            t40 t41 t42 t43 t44 t45 t46 t47 t48 t49 t50 t51 t52 t53 t54 t55 t56 t57 t58 t59
            t60 t61 t62 t63 t64 t65 t66 t67 t68 t69 t70 t71 t72 t73 t74 t75 t76 t77 t78 t79
            t80 t81 t82 t83 t84 t85 t86 t87 t88 t89 t90 t91 t92 t93 t94 t95 t96 t97 t98 t99
        );
    };
    (@ $attr:meta, $pool:ty; $($name:ident)*) => {
        $(
            #[$attr]
            async fn $name(pool: $pool) -> sqlx::Result<()> {
                sqlx::query("INSERT INTO t_1 (name, n) VALUES ('test', 9)")
                    .execute(&pool)
                    .await?;
                sqlx::query("INSERT INTO t_2 (name, n) VALUES ('test', 9)")
                    .execute(&pool)
                    .await?;
                let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t_1")
                    .fetch_one(&pool)
                    .await?;
                assert_eq!(rows, 4, "the three seed rows and this test's");
                Ok(())
            }
        )*
    };
}
