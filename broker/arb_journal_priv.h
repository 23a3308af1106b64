/*  arb_journal_priv.h — the journal's state, shared by its three files:
    arb_journal.c (the file, its schema, statements and transactions),
    arb_journal_tasks.c (tasks, their history and edges) and
    arb_journal_meta.c (metadata and schedules); see arb_journal.h.

    Not for use outside them: the layers above see only arb_journal.h.
*/

#ifndef ARB_JOURNAL_PRIV_H
#define ARB_JOURNAL_PRIV_H

#include "arb_journal.h"
#include "arb_sql.h"

#define ARB_EPOCH_KEY "broker.epoch"

struct _arb_journal_t {
    sqlite3 *db;                  //  owned
    int lock_fd;                  //  owned: flock'ed, so two brokers never share a journal
    bool in_txn;                  //  a turn's transaction is open
    uint64_t floor_kept;          //  the id floor committed to the file, as far as this process
                                  //  wrote it (0: not yet)
    uint64_t floor_txn;           //  the id floor the open transaction wrote (0: none)
    arb_journal_fault_t fault;    //  the first failure since open or the last rollback
    bool probing;                 //  a probe runs: its failures are expected, logged at debug
    char *path;                   //  owned
    sqlite3_stmt **prepared[64];  //  every statement slot below, for finalize
    size_t prepared_count;
    sqlite3_stmt *begin, *commit, *rollback, *insert, *insert_plain, *find_key, *save, *add_attempt,
        *load_payload, *trim_attempts, *load_open, *load_ready, *list_ready, *list_ready_newest,
        *load_task, *dead_ids, *flow_dead_ids, *task_info, *history, *done, *state, *list_final,
        *count_final, *purge_due, *add_dep, *set_has_children, *parents, *children, *copies,
        *insert_flow, *flows_named, *flow_kind, *scan, *purge_task, *purge_attempts, *purge_deps,
        *max_id, *meta_get, *meta_set, *meta_del, *meta_list, *schedule_add, *schedule_remove,
        *schedule_state, *schedule_fired, *schedules, *list_final_newest, *deps_of, *meta_page,
        *meta_del_range, *set_delivered, *cancel_open, *forget_attempts, *forget_deps,
        *forget_tasks, *deliver_ready, *probe_set, *probe_del, *drop_task, *unlose, *keep_until;
};

//  Runs a statement that returns no rows, and resets it: 0, or -1 (the
//  failure noted and logged, "journal: WHAT failed"). Every write is part
//  of a turn's transaction (arb_journal_begin), and after a failure nothing
//  runs but a rollback (arb_journal.c says why).
int arb_journal_run (arb_journal_t *self, sqlite3_stmt *stmt, const char *what);

//  Ends a read: resets the statement, and says whether rc, its last
//  step's result, was a failure (logged: "journal: WHAT [ID] unreadable").
int arb_journal_read_end (
    arb_journal_t *self, sqlite3_stmt *stmt, int rc, const char *what, uint64_t id);

//  The ids in the first column of every row of a bound statement, or NULL
//  if the read failed.
zlistx_t *arb_journal_read_ids (arb_journal_t *self, sqlite3_stmt *stmt, const char *what);

//  Notes the failure SQLite just reported, if it is the first since the
//  last rollback; a damaged file says so once, naming it.
void arb_journal_note_fault (arb_journal_t *self);

#endif
