//! Candidates for the projector's state on disk, on the projector's workload: event records
//! (key: agent, source and event id; value: the record's postcard bytes) written in
//! batches of a checkpoint's size, each committed durably together with the positions, then
//! point reads of present and absent keys. Each store runs in a child process of its own,
//! so that its peak RSS is its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{child_command, machine, peak_rss_mib};

/// The stores compared, by the name of their stage.
const STORES: [&str; 3] = ["sqlite", "fjall", "redb"];

/// The key under which a batch's positions are written, in the same commit as its records.
const POSITIONS_KEY: &[u8] = b"\x00positions";

#[derive(Debug, Clone, clap::Args)]
pub struct StoresArgs {
    /// Event records to write.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[command(flatten)]
    stage: StoreStage,
}

/// The workload's shape, passed to the child processes.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreStage {
    /// Records per durable commit (a checkpoint's worth while catching up).
    #[arg(long, default_value_t = 100_000)]
    pub batch: u64,
    /// Point reads of each kind (present keys, absent keys).
    #[arg(long, default_value_t = 100_000)]
    reads: u64,
}

/// What a store's child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreCost {
    pub records: u64,
    pub batches: u64,
    /// Mean size of a record's key and value.
    pub key_bytes: f64,
    pub value_bytes: f64,
    /// Putting the records of a batch into the store's write (before the commit).
    pub write_us_per_record: f64,
    /// The durable commit of a batch and its positions.
    pub commit_ms_per_batch: f64,
    /// Both, per record.
    pub total_us_per_record: f64,
    pub read_hit_us: f64,
    pub read_miss_us: f64,
    pub disk_bytes_per_record: f64,
    pub peak_rss_mib: f64,
}

/// One record of the workload, made from its number alone (no list of keys is held, so
/// the child's memory is the store's).
fn record(n: u64, agents: u64) -> (Vec<u8>, Vec<u8>) {
    let hash = mix(n);
    let agent = hash % agents;
    let source = if hash >> 60 == 0 { "app" } else { "crm" };
    let mut key = format!("A{agent:06}\0{source}\0").into_bytes();
    key.extend_from_slice(format!("evt-{:016x}-{n}", mix(hash)).as_bytes());
    (key, record_value(hash))
}

/// A key of the workload's shape that no record has.
fn absent_key(n: u64, agents: u64) -> Vec<u8> {
    let hash = mix(n ^ 0x5a5a_5a5a);
    format!("A{:06}\0crm\0evt-{:016x}-x{n}", hash % agents, mix(hash)).into_bytes()
}

/// The value as the fold keeps it: a digest and an activity's contribution (date, outlet's
/// place, counters, a sale's policy), in postcard.
#[derive(Debug, Serialize)]
struct Record {
    digest: u64,
    fact: Option<(NaiveDate, u32, Contribution, Option<String>)>,
}

#[derive(Debug, Serialize)]
enum Contribution {
    Visit,
    Consultation { consulted: u32, interested: u32 },
    Sale { premium: i64 },
}

fn record_value(hash: u64) -> Vec<u8> {
    let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default()
        + chrono::Duration::days((hash % 365) as i64);
    let (contribution, policy) = match hash % 10 {
        0..=5 => (Contribution::Visit, None),
        6..=8 => (
            Contribution::Consultation {
                consulted: (hash % 5) as u32 + 1,
                interested: (hash % 3) as u32,
            },
            None,
        ),
        _ => (
            Contribution::Sale {
                premium: (hash % 2_000_000) as i64 * 100,
            },
            Some(format!("P{:012}", hash % 1_000_000_000_000)),
        ),
    };
    let record = Record {
        digest: mix(hash ^ 1),
        fact: Some((date, (hash % 4) as u32, contribution, policy)),
    };
    postcard::to_allocvec(&record).unwrap_or_default()
}

/// SplitMix64: spreads record numbers over keys.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A store under test.
trait Candidate {
    /// Writes a batch of records and the positions in one durable commit; returns the time
    /// spent putting the records in and the time of the commit.
    fn commit(
        &mut self,
        records: &[(Vec<u8>, Vec<u8>)],
        position: u64,
    ) -> anyhow::Result<(Duration, Duration)>;
    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>>;
}

struct Sqlite(rusqlite::Connection);

impl Sqlite {
    /// The settings of the projector's own store (`checkpoint.rs`): WAL, synchronous FULL.
    fn open(dir: &Path) -> anyhow::Result<Self> {
        let connection = rusqlite::Connection::open(dir.join("records.db"))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;",
        )?;
        Ok(Self(connection))
    }
}

impl Candidate for Sqlite {
    fn commit(
        &mut self,
        records: &[(Vec<u8>, Vec<u8>)],
        position: u64,
    ) -> anyhow::Result<(Duration, Duration)> {
        let writing = Instant::now();
        let transaction = self.0.transaction()?;
        {
            let mut insert = transaction
                .prepare_cached("INSERT OR REPLACE INTO records (key, value) VALUES (?1, ?2)")?;
            for (key, value) in records {
                insert.execute((key, value))?;
            }
            insert.execute((POSITIONS_KEY, position.to_be_bytes().as_slice()))?;
        }
        let written = writing.elapsed();
        let committing = Instant::now();
        transaction.commit()?;
        Ok((written, committing.elapsed()))
    }

    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .0
            .prepare_cached("SELECT value FROM records WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?)
    }
}

struct Fjall {
    db: fjall::Database,
    records: fjall::Keyspace,
}

impl Fjall {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        let db = fjall::Database::builder(dir.join("fjall")).open()?;
        let records = db.keyspace("records", fjall::KeyspaceCreateOptions::default)?;
        Ok(Self { db, records })
    }
}

impl Candidate for Fjall {
    fn commit(
        &mut self,
        records: &[(Vec<u8>, Vec<u8>)],
        position: u64,
    ) -> anyhow::Result<(Duration, Duration)> {
        let writing = Instant::now();
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncAll));
        for (key, value) in records {
            batch.insert(&self.records, key.as_slice(), value.as_slice());
        }
        batch.insert(&self.records, POSITIONS_KEY, position.to_be_bytes());
        let written = writing.elapsed();
        let committing = Instant::now();
        batch.commit()?;
        Ok((written, committing.elapsed()))
    }

    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.records.get(key)?.map(|value| value.to_vec()))
    }
}

use redb::{ReadableDatabase, ReadableTable};

const REDB_RECORDS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("records");

struct Redb(redb::Database);

impl Redb {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self(redb::Database::create(dir.join("records.redb"))?))
    }
}

impl Candidate for Redb {
    fn commit(
        &mut self,
        records: &[(Vec<u8>, Vec<u8>)],
        position: u64,
    ) -> anyhow::Result<(Duration, Duration)> {
        let writing = Instant::now();
        // Durability::Immediate, the default: the commit returns once it is on disk.
        let transaction = self.0.begin_write()?;
        {
            let mut table = transaction.open_table(REDB_RECORDS)?;
            for (key, value) in records {
                table.insert(key.as_slice(), value.as_slice())?;
            }
            table.insert(POSITIONS_KEY, position.to_be_bytes().as_slice())?;
        }
        let written = writing.elapsed();
        let committing = Instant::now();
        transaction.commit()?;
        Ok((written, committing.elapsed()))
    }

    fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let transaction = self.0.begin_read()?;
        let table = transaction.open_table(REDB_RECORDS)?;
        Ok(table.get(key)?.map(|value| value.value().to_vec()))
    }
}

fn open(store: &str, dir: &Path) -> anyhow::Result<Box<dyn Candidate>> {
    Ok(match store {
        "sqlite" => Box::new(Sqlite::open(dir)?),
        "fjall" => Box::new(Fjall::open(dir)?),
        "redb" => Box::new(Redb::open(dir)?),
        other => anyhow::bail!("unknown store {other}"),
    })
}

/// The agents records are spread over: as many as the replay bench's region of that size.
fn agents_of(events: u64) -> u64 {
    (events / 150).max(10)
}

/// One store in this (child) process, into the fresh folder `dir`: prints its [`StoreCost`].
pub fn child(store: &str, dir: &Path, events: u64, stage: &StoreStage) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let agents = agents_of(events);
    let mut candidate = open(store, dir)?;
    let (mut writing, mut committing) = (Duration::ZERO, Duration::ZERO);
    let (mut key_bytes, mut value_bytes) = (0u64, 0u64);
    let mut batches = 0;
    let mut next = 0;
    while next < events {
        let end = (next + stage.batch).min(events);
        let records: Vec<(Vec<u8>, Vec<u8>)> = (next..end).map(|n| record(n, agents)).collect();
        for (key, value) in &records {
            key_bytes += key.len() as u64;
            value_bytes += value.len() as u64;
        }
        let (written, committed) = candidate.commit(&records, end)?;
        writing += written;
        committing += committed;
        batches += 1;
        next = end;
    }
    // Read in a new life of the store, as a restarted projector would.
    drop(candidate);
    let candidate = open(store, dir)?;
    let reads = stage.reads.min(events).max(1);
    let reading = Instant::now();
    for i in 0..reads {
        let n = mix(i ^ 0xabcd) % events;
        let (key, value) = record(n, agents);
        let found = candidate.get(&key)?;
        anyhow::ensure!(
            found.as_deref() == Some(value.as_slice()),
            "record {n} lost"
        );
    }
    let hit = reading.elapsed();
    let reading = Instant::now();
    for i in 0..reads {
        anyhow::ensure!(
            candidate.get(&absent_key(i, agents))?.is_none(),
            "absent key {i} found"
        );
    }
    let miss = reading.elapsed();
    drop(candidate);
    let disk = folder_bytes(dir)?;
    let cost = StoreCost {
        records: events,
        batches,
        key_bytes: key_bytes as f64 / events as f64,
        value_bytes: value_bytes as f64 / events as f64,
        write_us_per_record: writing.as_secs_f64() * 1e6 / events as f64,
        commit_ms_per_batch: committing.as_secs_f64() * 1e3 / batches as f64,
        total_us_per_record: (writing + committing).as_secs_f64() * 1e6 / events as f64,
        read_hit_us: hit.as_secs_f64() * 1e6 / reads as f64,
        read_miss_us: miss.as_secs_f64() * 1e6 / reads as f64,
        disk_bytes_per_record: disk as f64 / events as f64,
        peak_rss_mib: peak_rss_mib(),
    };
    println!("{}", serde_json::to_string(&cost)?);
    Ok(())
}

fn folder_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

/// `aqs-bench stores`: each store in a child process of its own, in `work/stores-<store>`
/// (removed afterwards).
pub fn stores(work: &Path, args: &StoresArgs) -> anyhow::Result<ExitCode> {
    println!(
        "\n### Stores for the projector's state on disk — {}\n",
        machine()
    );
    println!(
        "{} event records (key: agent, source, event id; value: the record in postcard) over {} agents in batches of {}, each committed durably with the positions in the same commit; then, after reopening, {} point reads of present keys and as many of absent ones. Default settings of each store; SQLite as the projector's store sets it (WAL, synchronous FULL, a table WITHOUT ROWID).\n",
        args.events,
        agents_of(args.events),
        args.stage.batch,
        args.stage.reads
    );
    println!(
        "| store | key + value (bytes) | write (µs/record) | durable commit (ms/batch) | write + commit (µs/record) | read hit (µs) | read miss (µs) | disk (bytes/record) | peak RSS (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for store in STORES {
        let dir: PathBuf = work.join(format!("stores-{store}"));
        let output = child_command(
            &format!("store-{store}"),
            &dir,
            &[
                "--records".to_owned(),
                args.events.to_string(),
                "--batch".to_owned(),
                args.stage.batch.to_string(),
                "--reads".to_owned(),
                args.stage.reads.to_string(),
            ],
        )?
        .output()
        .context("running a store's stage")?;
        let _ = std::fs::remove_dir_all(&dir);
        anyhow::ensure!(
            output.status.success(),
            "store {store} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cost: StoreCost = serde_json::from_slice(&output.stdout)?;
        println!(
            "| {store} | {:.0} + {:.0} | {:.2} | {:.0} | {:.2} | {:.1} | {:.1} | {:.0} | {:.0} |",
            cost.key_bytes,
            cost.value_bytes,
            cost.write_us_per_record,
            cost.commit_ms_per_batch,
            cost.total_us_per_record,
            cost.read_hit_us,
            cost.read_miss_us,
            cost.disk_bytes_per_record,
            cost.peak_rss_mib
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The crash stage of `tests/store_crash.rs`: commits batches of `batch` records, each with
/// the positions (the batch's number) in the same fjall write batch, into `dir` from the
/// positions found there on, printing each number once its commit has returned; runs until
/// it is killed.
pub fn crash_child(dir: &Path, batch: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let db = fjall::Database::builder(dir).open()?;
    let records = db.keyspace("records", fjall::KeyspaceCreateOptions::default)?;
    let mut position = match records.get(POSITIONS_KEY)? {
        Some(bytes) => u64::from_be_bytes(bytes.as_ref().try_into()?),
        None => 0,
    };
    let mut stdout = std::io::stdout();
    loop {
        position += 1;
        let mut write = db.batch().durability(Some(fjall::PersistMode::SyncAll));
        for i in 0..batch {
            write.insert(
                &records,
                format!("b{position:08}-{i:06}"),
                record_value(mix(position * batch + i)),
            );
        }
        write.insert(&records, POSITIONS_KEY, position.to_be_bytes());
        write.commit()?;
        writeln!(stdout, "{position}")?;
        stdout.flush()?;
    }
}
