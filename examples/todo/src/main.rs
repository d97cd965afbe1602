//! `todo`: a tiny todo HTTP API whose SQL migrations live in its binary.
//!
//! ```text
//! todo                         # apply pending migrations, then serve on 127.0.0.1:3000
//! todo serve --listen 0.0.0.0:8080
//! todo migrate status|up|down|stamp|verify|plan|repair …
//! ```
//!
//! `DATABASE_URL` picks the database (default `sqlite://todo.db`, a file in
//! the working folder), or without it the file `DATABASE_URL_FILE` names (a
//! Docker or Kubernetes secret); `postgres://…` and `mysql://…` switch
//! backend, and the matching folder of `migrations/` is applied.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clap::{Parser, Subcommand};
use sqlx::{AnyPool, Row};
use std::net::SocketAddr;
use stowage::{Dialect, Migrator};

static MIGRATOR: Migrator = stowage::embed_migrations!();

const DEFAULT_DATABASE_URL: &str = "sqlite://todo.db";

#[derive(Parser)]
#[command(
    version,
    about = "A todo API whose migrations live in its binary",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API (the default).
    Serve(Serve),
    /// Inspect and change the database's migrations.
    Migrate(stowage::cli::MigrateCommand),
}

#[derive(clap::Args)]
struct Serve {
    /// Where to listen.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The database (default: DATABASE_URL, the file DATABASE_URL_FILE names,
    /// or sqlite://todo.db).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Migrate(mut command)) => match database_url(command.database_url.take()) {
            Ok(url) => {
                command.database_url = Some(url);
                command.run_blocking(&MIGRATOR)
            }
            Err(error) => {
                eprintln!("error: {error}");
                1
            }
        },
        Some(Command::Serve(serve)) => serve_blocking(serve),
        None => serve_blocking(cli.serve),
    };
    std::process::exit(code);
}

fn serve_blocking(serve: Serve) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(run(serve)) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}

/// The URL given, else the environment's (`DATABASE_URL_FILE` included),
/// else the SQLite file.
fn database_url(given: Option<String>) -> Result<String, Box<dyn std::error::Error>> {
    match given {
        Some(url) => Ok(url),
        None => Ok(stowage::database_url()?.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())),
    }
}

/// Connect (waiting for the database), migrate, serve until Ctrl-C or SIGTERM.
async fn run(serve: Serve) -> Result<(), Box<dyn std::error::Error>> {
    let pool: AnyPool = stowage::connect(&database_url(serve.database_url)?).await?;
    let report = MIGRATOR.run(&pool).await?;
    tracing::info!("{report}");
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/todos", get(list).post(create))
        .with_state(Db {
            pool,
            dialect: report.dialect(),
        });
    let listener = tokio::net::TcpListener::bind(serve.listen).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(Clone)]
struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

#[derive(serde::Serialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
}

#[derive(serde::Deserialize)]
struct NewTodo {
    title: String,
}

type Failure = (StatusCode, String);

fn failure(error: sqlx::Error) -> Failure {
    tracing::error!(%error, "database error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "database error".to_owned(),
    )
}

async fn list(State(db): State<Db>) -> Result<Json<Vec<Todo>>, Failure> {
    let done = match db.dialect {
        Dialect::Postgres => "(CASE WHEN done THEN 1 ELSE 0 END)::bigint",
        Dialect::MySql => "CAST(done AS SIGNED)",
        _ => "CAST(done AS INTEGER)",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, title, {done} FROM todos ORDER BY id"
    )))
    .fetch_all(&db.pool)
    .await
    .map_err(failure)?;
    let todos = rows
        .iter()
        .map(|row| {
            Ok(Todo {
                id: row.try_get(0)?,
                title: row.try_get(1)?,
                done: row.try_get::<i64, _>(2)? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(failure)?;
    Ok(Json(todos))
}

async fn create(
    State(db): State<Db>,
    Json(new): Json<NewTodo>,
) -> Result<(StatusCode, Json<Todo>), Failure> {
    let title = new.title.trim().to_owned();
    if title.is_empty() || title.len() > 500 {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "title must be 1 to 500 characters".to_owned(),
        ));
    }
    let id = match db.dialect {
        Dialect::Postgres => {
            sqlx::query_scalar("INSERT INTO todos (title) VALUES ($1) RETURNING id")
                .bind(&title)
                .fetch_one(&db.pool)
                .await
                .map_err(failure)?
        }
        Dialect::Sqlite => sqlx::query_scalar("INSERT INTO todos (title) VALUES (?) RETURNING id")
            .bind(&title)
            .fetch_one(&db.pool)
            .await
            .map_err(failure)?,
        _ => sqlx::query("INSERT INTO todos (title) VALUES (?)")
            .bind(&title)
            .execute(&db.pool)
            .await
            .map_err(failure)?
            .last_insert_id()
            .unwrap_or_default(),
    };
    Ok((
        StatusCode::CREATED,
        Json(Todo {
            id,
            title,
            done: false,
        }),
    ))
}
