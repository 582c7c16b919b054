//! `ferrokms backup`: an online, consistent copy of a data directory's
//! SQLite database.
//!
//! `VACUUM INTO` reads the database in one read transaction, so the copy is
//! a snapshot even while the server writes (SQLite's WAL lets the server go
//! on meanwhile); the copy is compact and needs no WAL file beside it.
//! The root key is deliberately not copied: key material in the database is
//! sealed with it, and a backup that carries its own key is only as safe as
//! the place it is kept. Operators back the root key up separately
//! (docs/operations.md).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use ferrokms_server::setup;

#[derive(Args)]
pub struct BackupArgs {
    /// The data directory of the server (it may be running).
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    data_dir: PathBuf,
    /// The file to write (must not exist; created with mode 0600).
    #[arg(long)]
    to: PathBuf,
    /// Set on a node whose state is in PostgreSQL: this command copies only
    /// SQLite, and says to use pg_dump instead.
    #[arg(long, env = "FERROKMS_STORE", hide_env_values = true)]
    store: Option<String>,
}

/// What to do on a PostgreSQL node.
const PG_DUMP: &str = "this node keeps its state in PostgreSQL (--store): back the database up with pg_dump (e.g. `pg_dump --format=custom --file=ferrokms.dump DBNAME`; docs/deployment.md), and the root key apart from it";

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    if args.store.is_some() {
        bail!("{PG_DUMP}");
    }
    let db = args.data_dir.join(setup::DATABASE_FILE);
    if !db.is_file() && args.data_dir.join(setup::ROOT_KEY_FILE).is_file() {
        bail!(
            "{} holds a root key but no {}: if it is a PostgreSQL node's directory, {}",
            args.data_dir.display(),
            setup::DATABASE_FILE,
            PG_DUMP.trim_start_matches("this node keeps its state in PostgreSQL (--store): ")
        );
    }
    if !db.is_file() {
        bail!(
            "{} is not a ferrokms data directory (no {})",
            args.data_dir.display(),
            setup::DATABASE_FILE
        );
    }
    if args.to.exists() {
        bail!("{} exists; give a new file", args.to.display());
    }
    let to = args
        .to
        .to_str()
        .context("the backup path must be valid UTF-8")?
        .to_string();
    // An empty 0600 file first: VACUUM INTO accepts an empty target, and
    // the copy never exists with wider permissions.
    ferrokms_store::seal::write_private_file(&args.to, b"")
        .with_context(|| format!("cannot create {}", args.to.display()))?;
    let result = (|| -> anyhow::Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute("VACUUM INTO ?1", [&to])
            .with_context(|| format!("cannot write the backup to {to}"))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&args.to);
        return Err(e);
    }
    outln!("wrote {}", args.to.display());
    eprintln!(
        "note: the root key is not in the backup; keep a copy of {} (or your --root-key-file) apart from it.\n\
         Restore: stop the server, copy the backup to DATA_DIR/{} (remove any {}-wal and -shm beside it), put the same root key back, start.",
        args.data_dir.join(setup::ROOT_KEY_FILE).display(),
        setup::DATABASE_FILE,
        setup::DATABASE_FILE,
    );
    Ok(())
}
