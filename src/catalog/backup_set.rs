//! Which resources a backup takes, from the catalog's `backup` column: one list that
//! `backup` runs and `permissions --role backup` grants, so the job's user can snapshot
//! exactly what the command takes. Lattice names arrive checked (`backup::selection`,
//! `permissions` both validate them first).

use super::{Row, Scope, CATALOG};

/// One resource a backup takes.
#[derive(Debug, Clone)]
pub struct Selected {
    pub row: &'static Row,
    /// Bucket or stream name as users know it.
    pub name: String,
    /// The JetStream stream.
    pub stream: String,
}

/// Every row marked [`super::Backup::Recommended`] (with `all` also the optional ones;
/// never those marked `Never`) of each lattice, and of wadm with `wadm` (`all` implies
/// it). Each lattice once, in the order given.
pub fn backup_set(lattices: &[String], wadm: bool, all: bool) -> Vec<Selected> {
    let mut seen: Vec<&String> = Vec::new();
    for l in lattices {
        if !seen.contains(&l) {
            seen.push(l);
        }
    }
    let taken = |row: &Row| row.backup.taken(all);
    let mut out = Vec::new();
    for row in CATALOG
        .iter()
        .filter(|r| r.scope == Scope::Lattice && taken(r))
    {
        for l in &seen {
            out.push(Selected {
                row,
                name: row.name_for(l),
                stream: row.stream_for(l),
            });
        }
    }
    if wadm || all {
        for row in CATALOG
            .iter()
            .filter(|r| r.scope == Scope::Wadm && taken(r))
        {
            out.push(Selected {
                row,
                name: row.name_for(""),
                stream: row.stream_for(""),
            });
        }
    }
    out
}
