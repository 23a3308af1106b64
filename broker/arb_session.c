/*  arb_session.c — a worker's session; see arb_session.h. */

#include "arb_session.h"
#include "arb_bytes.h"
#include "arb_vec.h"

struct _arb_session_t {
    zframe_t *identity;  //  owned routing id
    char *key;           //  owned hex of the routing id
    char *name;          //  owned
    char *mode;          //  owned
    uint32_t slots;
    uint32_t pid;
    char *host;             //  owned
    zhashx_t *handles;      //  owned set of the task names it runs; NULL: every name
    uint32_t busy;          //  as its last heartbeat said
    uint64_t last_seen_ms;  //  monotonic
    uint64_t last_sent_ms;  //  monotonic
    arb_sub_t **subs;       //  owned array of owned subscriptions
    size_t sub_count;
    size_t sub_capacity;  //  subs allocated
    arb_task_t *leases;   //  first of the intrusive list of borrowed tasks
    size_t lease_count;
    arb_msg_t *outgoing;    //  owned DISPATCH being built, or NULL
    size_t outgoing_bytes;  //  its payload bytes
    bool registered;        //  its REGISTER came
    uint32_t register_id;   //  that REGISTER's request id: the worker's later ones are higher
    uint64_t worker;        //  hash of name, pid and host (arb_session_worker)
    bool acks;              //  the worker keeps results until RESULT_OK
    bool marks;             //  its HEARTBEAT says the mark it read (arb_session_mark)
    uint64_t beats[2];      //  Unix ms its last two HEARTBEATs came, oldest first
    uint32_t out_of_step;   //  heartbeats in a row with busy below its old leases
    uint64_t lease_hi;      //  the highest lease it was given
    uint64_t mark;          //  the last mark sent in a HEARTBEAT (arb_session_mark)
    uint64_t marked_ms;     //  monotonic: when
    bool broken;            //  a DISPATCH to it failed: it ends after the dispatch pass
    bool shut_out;          //  its certificate lost the worker role (arb_life_shut_out)
    uint32_t held_turn;     //  the scheduler's turn it got a TAKE's tasks in, or 0
    uint32_t welcome_turn;  //  the scheduler's turn it got its WELCOME in, or 0
};

arb_session_t *
arb_session_new (zframe_t *identity, const char *key)
{
    arb_session_t *self = (arb_session_t *) zmalloc (sizeof (arb_session_t));
    self->identity = zframe_dup (identity);
    self->key = strdup (key);
    self->name = strdup (key);
    self->mode = strdup ("light");
    self->host = strdup ("");
    return self;
}

static void
s_sub_destroy (arb_sub_t **sub_p)
{
    arb_sub_t *sub = *sub_p;
    for (size_t i = 0; i < sub->queue_count; i++)
        free (sub->queues[i]);
    free (sub->queues);
    free (sub);
    *sub_p = NULL;
}

void
arb_session_destroy (arb_session_t **self_p)
{
    assert (self_p);
    arb_session_t *self = *self_p;
    if (!self)
        return;
    //  leases must have been handed back by the scheduler first
    assert (self->lease_count == 0);
    for (size_t i = 0; i < self->sub_count; i++)
        s_sub_destroy (&self->subs[i]);
    free (self->subs);
    arb_msg_destroy (&self->outgoing);
    zframe_destroy (&self->identity);
    free (self->key);
    free (self->name);
    free (self->mode);
    free (self->host);
    zhashx_destroy (&self->handles);
    free (self);
    *self_p = NULL;
}

zframe_t *
arb_session_identity (arb_session_t *self)
{
    return self->identity;
}

const char *
arb_session_key (arb_session_t *self)
{
    return self->key;
}

static void
s_replace (char **field, const char *value)
{
    if (value && *value) {
        free (*field);
        *field = strdup (value);
    }
}

void
arb_session_set_info (arb_session_t *self,
                      const char *name,
                      const char *mode,
                      uint32_t slots,
                      uint32_t pid,
                      const char *host)
{
    s_replace (&self->name, name);
    s_replace (&self->mode, mode);
    s_replace (&self->host, host);
    self->slots = slots;
    self->pid = pid;
    self->registered = true;
    //  FNV-1a, over what tells one worker process from another
    uint64_t hash = arb_bytes_fnv (ARB_FNV_BASIS, self->name, strlen (self->name) + 1);
    hash = arb_bytes_fnv (hash, &self->pid, sizeof (self->pid));
    self->worker = arb_bytes_fnv (hash, self->host, strlen (self->host) + 1);
}

uint64_t
arb_session_worker (arb_session_t *self)
{
    return self->worker;
}

void
arb_session_set_acks (arb_session_t *self, bool acks, bool marks)
{
    self->acks = acks;
    self->marks = acks && marks;
    //  a worker registering again on a kept session reads marks anew, and
    //  its last heartbeats judged nothing of this session's
    self->beats[0] = self->beats[1] = 0;
    self->out_of_step = 0;
    self->mark = self->marked_ms = 0;
}

bool
arb_session_marks (arb_session_t *self)
{
    return self->marks;
}

bool
arb_session_acks (arb_session_t *self)
{
    return self->acks;
}

void
arb_session_hold_early (arb_session_t *self, uint32_t turn)
{
    self->held_turn = turn;
}

bool
arb_session_held_early (arb_session_t *self, uint32_t turn)
{
    return self->held_turn == turn || self->welcome_turn == turn;
}

void
arb_session_set_welcome_turn (arb_session_t *self, uint32_t turn)
{
    self->welcome_turn = turn;
}

bool
arb_session_welcome_waits (arb_session_t *self, uint32_t turn)
{
    return self->welcome_turn == turn;
}

uint64_t
arb_session_beat (arb_session_t *self, uint64_t now_ms)
{
    uint64_t before = self->beats[0];
    self->beats[0] = self->beats[1];
    self->beats[1] = now_ms;
    return before;
}

uint32_t
arb_session_out_of_step (arb_session_t *self, bool out)
{
    self->out_of_step = out ? self->out_of_step + 1 : 0;
    return self->out_of_step;
}

void
arb_session_set_broken (arb_session_t *self)
{
    self->broken = true;
}

bool
arb_session_is_broken (arb_session_t *self)
{
    return self->broken;
}

bool
arb_session_registered (arb_session_t *self)
{
    return self->registered;
}

void
arb_session_set_handles (arb_session_t *self, const char **names, size_t count)
{
    assert (self->sub_count == 0);  //  its subscriptions' queues count on the names
    zhashx_destroy (&self->handles);
    if (count == 0)
        return;
    self->handles = zhashx_new ();
    for (size_t i = 0; i < count; i++)
        zhashx_update (self->handles, names[i], (void *) 1);
}

bool
arb_session_handles (arb_session_t *self, const char *name)
{
    return !self->handles || zhashx_lookup (self->handles, name);
}

bool
arb_session_handles_all (arb_session_t *self)
{
    return !self->handles;
}

void
arb_session_set_register_id (arb_session_t *self, uint32_t reqid)
{
    self->register_id = reqid;
}

bool
arb_session_newer (arb_session_t *self, arb_session_t *other)
{
    return self->registered && other->registered && self->pid == other->pid
           && streq (self->name, other->name) && streq (self->host, other->host)
           && self->register_id > other->register_id;
}

const char *
arb_session_name (arb_session_t *self)
{
    return self->name;
}

const char *
arb_session_mode (arb_session_t *self)
{
    return self->mode;
}

uint32_t
arb_session_slots (arb_session_t *self)
{
    return self->slots;
}

void
arb_session_touch (arb_session_t *self, uint64_t mono_ms)
{
    self->last_seen_ms = mono_ms;
    self->shut_out = false;  //  a message taken from it: its role is back
}

void
arb_session_set_shut_out (arb_session_t *self)
{
    self->shut_out = true;
}

bool
arb_session_is_shut_out (arb_session_t *self)
{
    return self->shut_out;
}

uint64_t
arb_session_last_seen (arb_session_t *self)
{
    return self->last_seen_ms;
}

void
arb_session_sent (arb_session_t *self, uint64_t mono_ms)
{
    self->last_sent_ms = mono_ms;
}

uint64_t
arb_session_last_sent (arb_session_t *self)
{
    return self->last_sent_ms;
}

bool
arb_session_mark_due (arb_session_t *self, uint64_t mono_ms, uint64_t every_ms)
{
    return self->marks && self->lease_hi > self->mark && self->marked_ms + every_ms <= mono_ms;
}

uint64_t
arb_session_mark (arb_session_t *self, uint64_t mono_ms)
{
    self->mark = self->lease_hi;
    self->marked_ms = mono_ms;
    return self->mark;
}

void
arb_session_set_busy (arb_session_t *self, uint32_t busy)
{
    self->busy = busy;
}

uint32_t
arb_session_busy (arb_session_t *self)
{
    return self->busy;
}

uint32_t
arb_session_pid (arb_session_t *self)
{
    return self->pid;
}

const char *
arb_session_host (arb_session_t *self)
{
    return self->host;
}

arb_sub_t *
arb_session_sub (arb_session_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->sub_count; i++)
        if (self->subs[i]->id == id)
            return self->subs[i];
    return NULL;
}

arb_sub_t *
arb_session_add_sub (arb_session_t *self, uint32_t id, const char **queues, size_t count)
{
    assert (!arb_session_sub (self, id));
    arb_sub_t *sub = (arb_sub_t *) zmalloc (sizeof (arb_sub_t));
    sub->id = id;
    sub->session = self;
    sub->queues = (char **) zmalloc ((count ? count : 1) * sizeof (char *));
    for (size_t i = 0; i < count; i++)
        sub->queues[i] = strdup (queues[i]);
    sub->queue_count = count;
    self->subs = (arb_sub_t **) arb_array_grow (self->subs, self->sub_count, &self->sub_capacity,
                                                sizeof (arb_sub_t *));
    self->subs[self->sub_count++] = sub;
    return sub;
}

void
arb_session_remove_sub (arb_session_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->sub_count; i++)
        if (self->subs[i]->id == id) {
            s_sub_destroy (&self->subs[i]);
            memmove (&self->subs[i], &self->subs[i + 1],
                     (self->sub_count - i - 1) * sizeof (arb_sub_t *));
            self->sub_count--;
            return;
        }
}

size_t
arb_session_sub_count (arb_session_t *self)
{
    return self->sub_count;
}

arb_sub_t *
arb_session_sub_at (arb_session_t *self, size_t index)
{
    return index < self->sub_count ? self->subs[index] : NULL;
}

int64_t
arb_session_credit (arb_session_t *self)
{
    int64_t credit = 0;
    for (size_t i = 0; i < self->sub_count; i++)
        if (self->subs[i]->credit > 0)
            credit += self->subs[i]->credit;
    return credit;
}

void
arb_session_add_lease (arb_session_t *self, arb_task_t *task)
{
    arb_task_ext_t *ext = arb_task_ext_rw (task);
    if (ext->lease > self->lease_hi)
        self->lease_hi = ext->lease;
    ext->lease_prev = NULL;
    ext->lease_next = self->leases;
    if (self->leases)
        arb_task_ext_rw (self->leases)->lease_prev = task;
    self->leases = task;
    self->lease_count++;
}

void
arb_session_remove_lease (arb_session_t *self, arb_task_t *task)
{
    arb_task_ext_t *ext = arb_task_ext_rw (task);
    if (ext->lease_prev)
        arb_task_ext_rw (ext->lease_prev)->lease_next = ext->lease_next;
    else
        self->leases = ext->lease_next;
    if (ext->lease_next)
        arb_task_ext_rw (ext->lease_next)->lease_prev = ext->lease_prev;
    ext->lease_prev = ext->lease_next = NULL;
    self->lease_count--;
}

arb_task_t *
arb_session_first_lease (arb_session_t *self)
{
    return self->leases;
}

size_t
arb_session_lease_count (arb_session_t *self)
{
    return self->lease_count;
}

arb_msg_t **
arb_session_outgoing (arb_session_t *self)
{
    return &self->outgoing;
}

size_t *
arb_session_outgoing_bytes (arb_session_t *self)
{
    return &self->outgoing_bytes;
}
