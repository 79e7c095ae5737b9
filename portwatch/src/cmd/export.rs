//! `portwatch export FILE --format jsonl|csv`: one row per event with readable names, for
//! DuckDB, pandas and spreadsheets.

use std::{
    io::{self, BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use crate::record::{Reader, export};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Columns (CSV header, JSON keys): time, ts_ns, netns, pid, tid, ppid, comm, type, op,
old_state, new_state, local, remote, errno, fd, sk, bound_port, remaining_jiffies.

Example:
  portwatch export incident.pwr --format csv > events.csv
  duckdb -c \"select comm, count(*) from 'events.csv' where errno = 'EADDRNOTAVAIL' group by 1\"")]
pub struct Args {
    /// A recording from `portwatch record`.
    file: PathBuf,
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut reader = Reader::open(&args.file)?;
    let out = BufWriter::new(io::stdout().lock());
    let format = match args.format {
        Format::Jsonl => export::Format::Jsonl,
        Format::Csv => export::Format::Csv,
    };
    let done = export::export(&mut reader, format, out)?;
    io::stdout().flush()?;
    for e in &done.errors {
        eprintln!("portwatch: skipped damaged data: {e}");
    }
    let integrity = reader.integrity();
    if !integrity.is_complete() {
        eprintln!("portwatch: warning: {}: {integrity}", args.file.display());
    }
    eprintln!("portwatch: {} rows", done.rows);
    Ok(ExitCode::SUCCESS)
}
