//! What SQLite's authorizer says a statement does, and which statements cannot
//! run inside a migration's transaction (SPEC "pitfalls": found by SQLite's own
//! parser, never a regular expression that comments or strings could fool).

use rusqlite::hooks::{AuthAction, AuthContext, TransactionOperation};
use rusqlite::Connection;

/// The parts of an authorizer request that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Transaction(&'static str),
    Attach,
    Detach,
    JournalMode,
    DropTable(String),
    DropView(String),
    Delete(String),
    CreateTable(String),
    AlterTable(String),
    /// Anything else that changes the schema (indexes, views, triggers, …).
    Schema,
    /// Reads, functions and the like: nothing to act on here.
    Other,
}

impl Action {
    pub fn from(ctx: &AuthContext<'_>) -> Option<Action> {
        let internal = crate::history::is_internal;
        Some(match ctx.action {
            AuthAction::Transaction { operation } => Action::Transaction(match operation {
                TransactionOperation::Begin => "BEGIN",
                TransactionOperation::Release => "COMMIT",
                TransactionOperation::Rollback => "ROLLBACK",
                // SQLite says "COMMIT", which rusqlite does not name.
                _ => "COMMIT",
            }),
            AuthAction::Attach { .. } => Action::Attach,
            AuthAction::Detach { .. } => Action::Detach,
            AuthAction::Pragma {
                pragma_name,
                pragma_value: Some(_),
            } if pragma_name.eq_ignore_ascii_case("journal_mode") => Action::JournalMode,
            AuthAction::DropTable { table_name } if !internal(table_name) => {
                Action::DropTable(table_name.to_owned())
            }
            AuthAction::DropView { view_name } => Action::DropView(view_name.to_owned()),
            AuthAction::Delete { table_name } if !internal(table_name) => {
                Action::Delete(table_name.to_owned())
            }
            AuthAction::CreateTable { table_name } if !internal(table_name) => {
                Action::CreateTable(table_name.to_owned())
            }
            AuthAction::AlterTable { table_name, .. } if !internal(table_name) => {
                Action::AlterTable(table_name.to_owned())
            }
            AuthAction::CreateIndex { .. }
            | AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. }
            | AuthAction::CreateTrigger { .. }
            | AuthAction::CreateView { .. }
            | AuthAction::CreateVtable { .. }
            | AuthAction::DropIndex { .. }
            | AuthAction::DropTempIndex { .. }
            | AuthAction::DropTempTable { .. }
            | AuthAction::DropTempTrigger { .. }
            | AuthAction::DropTempView { .. }
            | AuthAction::DropTrigger { .. }
            | AuthAction::DropVtable { .. }
            | AuthAction::Analyze { .. }
            | AuthAction::Pragma { .. } => Action::Schema,
            _ => return None,
        })
    }

    pub fn changes_schema(&self) -> bool {
        matches!(
            self,
            Action::DropTable(_)
                | Action::DropView(_)
                | Action::CreateTable(_)
                | Action::AlterTable(_)
                | Action::Schema
        )
    }

    /// The keyword to name when this cannot run inside a transaction.
    pub fn hostile(&self) -> Option<String> {
        match self {
            Action::Transaction(k) => Some((*k).to_owned()),
            Action::Attach => Some("ATTACH".into()),
            Action::Detach => Some("DETACH".into()),
            Action::JournalMode => Some("PRAGMA journal_mode".into()),
            _ => None,
        }
    }
}

/// VACUUM has no authorizer code; its bytecode has an opcode of its own.
pub(super) fn is_vacuum(scratch: &Connection, sql: &str) -> bool {
    let Ok(mut stmt) = scratch.prepare(&format!("EXPLAIN {sql}")) else {
        return false;
    };
    let Ok(mut rows) = stmt.query([]) else {
        return false;
    };
    while let Ok(Some(row)) = rows.next() {
        if row.get::<_, String>(1).is_ok_and(|op| op == "Vacuum") {
            return true;
        }
    }
    false
}
