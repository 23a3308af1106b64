/*  arb_reactor.c — the gateway's event loop; see arb_reactor.h.

    Descriptors live in epoll with a pointer to their registration, never
    their number: a connection closed and its number reused within one
    batch of events must not receive the old one's events. A removed
    registration is marked dead and freed at the end of the turn.
*/

#include "arb_reactor.h"
#include "arb_heap.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <unistd.h>

#define ARB_REACTOR_EVENTS 256  //  epoll events taken per call

typedef struct {
    int fd;
    unsigned events;  //  ARB_REACTOR_READ, _WRITE, _RDHUP asked for
    bool dead;        //  removed during this turn: free at its end
    arb_reactor_io_fn *fn;
    void *arg;
} s_io_t;

typedef struct {
    zsock_t *sock;  //  borrowed
    arb_reactor_sock_fn *fn;
    void *arg;
} s_sock_t;

typedef struct {
    arb_reactor_prepare_fn *fn;
    void *arg;
} s_hook_t;

struct _arb_reactor_t {
    int epfd;            //  owned
    s_io_t **by_fd;      //  owned array of owned registrations, indexed by fd
    size_t fd_slots;     //  length of by_fd
    zlist_t *graveyard;  //  owned: registrations removed this turn
    s_sock_t socks[ARB_REACTOR_SOCKS_MAX];
    size_t sock_count;
    s_hook_t hooks[ARB_REACTOR_HOOKS_MAX];
    size_t hook_count;
    arb_heap_t *timers;  //  owned heap of borrowed arb_timer_t
    uint64_t now_ms;     //  monotonic ms of this turn
    bool stopped;
};

static bool
s_timer_before (const void *a, const void *b, void *arg)
{
    (void) arg;
    return ((const arb_timer_t *) a)->due_ms < ((const arb_timer_t *) b)->due_ms;
}

static size_t *
s_timer_slot (void *item)
{
    return &((arb_timer_t *) item)->slot;
}

arb_reactor_t *
arb_reactor_new (void)
{
    int epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (epfd < 0) {
        zsys_error ("reactor: epoll_create1 failed: %s", strerror (errno));
        return NULL;
    }
    arb_reactor_t *self = (arb_reactor_t *) zmalloc (sizeof (arb_reactor_t));
    self->epfd = epfd;
    self->graveyard = zlist_new ();
    self->timers = arb_heap_new (s_timer_before, s_timer_slot, NULL);
    self->now_ms = (uint64_t) zclock_mono ();
    return self;
}

static void
s_bury (arb_reactor_t *self)
{
    s_io_t *io;
    while ((io = (s_io_t *) zlist_pop (self->graveyard)))
        free (io);
}

void
arb_reactor_destroy (arb_reactor_t **self_p)
{
    assert (self_p);
    arb_reactor_t *self = *self_p;
    if (!self)
        return;
    for (size_t fd = 0; fd < self->fd_slots; fd++)
        free (self->by_fd[fd]);
    free (self->by_fd);
    s_bury (self);
    zlist_destroy (&self->graveyard);
    arb_heap_destroy (&self->timers);
    close (self->epfd);
    free (self);
    *self_p = NULL;
}

static uint32_t
s_epoll_events (unsigned events)
{
    return (events & ARB_REACTOR_READ ? EPOLLIN : 0) | (events & ARB_REACTOR_WRITE ? EPOLLOUT : 0)
           | (events & ARB_REACTOR_RDHUP ? EPOLLRDHUP : 0);
}

static s_io_t *
s_find (arb_reactor_t *self, int fd)
{
    return fd >= 0 && (size_t) fd < self->fd_slots ? self->by_fd[fd] : NULL;
}

int
arb_reactor_add_fd (arb_reactor_t *self, int fd, unsigned events, arb_reactor_io_fn *fn, void *arg)
{
    assert (fd >= 0 && fn);
    assert (!s_find (self, fd));
    if ((size_t) fd >= self->fd_slots) {
        size_t slots = self->fd_slots ? self->fd_slots : 64;
        while (slots <= (size_t) fd)
            slots *= 2;
        self->by_fd = (s_io_t **) realloc (self->by_fd, slots * sizeof (s_io_t *));
        assert (self->by_fd);
        memset (self->by_fd + self->fd_slots, 0, (slots - self->fd_slots) * sizeof (s_io_t *));
        self->fd_slots = slots;
    }
    s_io_t *io = (s_io_t *) zmalloc (sizeof (s_io_t));
    *io = (s_io_t){fd, events, false, fn, arg};
    struct epoll_event event = {.events = s_epoll_events (events), .data.ptr = io};
    if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &event)) {
        free (io);
        return -1;
    }
    self->by_fd[fd] = io;
    return 0;
}

int
arb_reactor_watch_fd (arb_reactor_t *self, int fd, unsigned events)
{
    s_io_t *io = s_find (self, fd);
    assert (io);
    if (io->events == events)
        return 0;
    struct epoll_event event = {.events = s_epoll_events (events), .data.ptr = io};
    if (epoll_ctl (self->epfd, EPOLL_CTL_MOD, fd, &event))
        return -1;
    io->events = events;
    return 0;
}

void
arb_reactor_remove_fd (arb_reactor_t *self, int fd)
{
    s_io_t *io = s_find (self, fd);
    if (!io)
        return;
    epoll_ctl (self->epfd, EPOLL_CTL_DEL, fd, NULL);
    self->by_fd[fd] = NULL;
    io->dead = true;
    zlist_append (self->graveyard, io);
}

int
arb_reactor_add_sock (arb_reactor_t *self, zsock_t *sock, arb_reactor_sock_fn *fn, void *arg)
{
    if (self->sock_count == ARB_REACTOR_SOCKS_MAX)
        return -1;
    self->socks[self->sock_count++] = (s_sock_t){sock, fn, arg};
    return 0;
}

void
arb_reactor_remove_sock (arb_reactor_t *self, zsock_t *sock)
{
    for (size_t i = 0; i < self->sock_count; i++)
        if (self->socks[i].sock == sock) {
            memmove (&self->socks[i], &self->socks[i + 1],
                     (self->sock_count - i - 1) * sizeof (s_sock_t));
            self->sock_count--;
            return;
        }
}

int
arb_reactor_add_prepare (arb_reactor_t *self, arb_reactor_prepare_fn *fn, void *arg)
{
    if (self->hook_count == ARB_REACTOR_HOOKS_MAX)
        return -1;
    self->hooks[self->hook_count++] = (s_hook_t){fn, arg};
    return 0;
}

void
arb_reactor_arm (
    arb_reactor_t *self, arb_timer_t *timer, uint64_t delay_ms, arb_reactor_timer_fn *fn, void *arg)
{
    arb_reactor_disarm (self, timer);
    //  from now, not from the turn's start: a timer armed before the loop
    //  runs, or late in a long turn, still waits its whole delay
    timer->due_ms = (uint64_t) zclock_mono () + delay_ms;
    timer->fn = fn;
    timer->arg = arg;
    timer->armed = true;
    timer->slot = ARB_HEAP_NONE;  //  a zeroed, never armed timer says 0
    arb_heap_push (self->timers, timer);
}

void
arb_reactor_disarm (arb_reactor_t *self, arb_timer_t *timer)
{
    if (!timer->armed)
        return;
    arb_heap_remove (self->timers, timer);
    timer->armed = false;
}

uint64_t
arb_reactor_now (arb_reactor_t *self)
{
    return self->now_ms;
}

void
arb_reactor_stop (arb_reactor_t *self)
{
    self->stopped = true;
}

//  How long the turn may wait: the hooks' wishes and the next timer.
static long
s_wait_ms (arb_reactor_t *self)
{
    long wait = -1;
    for (size_t i = 0; i < self->hook_count; i++) {
        int want = self->hooks[i].fn (self, self->hooks[i].arg);
        if (want >= 0 && (wait < 0 || want < wait))
            wait = want;
    }
    arb_timer_t *next = (arb_timer_t *) arb_heap_peek (self->timers);
    if (next) {
        uint64_t now = (uint64_t) zclock_mono ();
        long until = next->due_ms > now ? (long) (next->due_ms - now) : 0;
        if (wait < 0 || until < wait)
            wait = until;
    }
    return wait;
}

//  Takes the descriptors' events, waiting up to wait ms for them (-1: as
//  long as it takes), and runs their handlers. 0, or -1 if epoll failed
//  (logged).
static int
s_dispatch_fds (arb_reactor_t *self, long wait)
{
    struct epoll_event events[ARB_REACTOR_EVENTS];
    int count =
        epoll_wait (self->epfd, events, ARB_REACTOR_EVENTS, wait > INT_MAX ? INT_MAX : (int) wait);
    self->now_ms = (uint64_t) zclock_mono ();
    if (count < 0 && errno != EINTR) {
        zsys_error ("reactor: epoll_wait failed: %s", strerror (errno));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        s_io_t *io = (s_io_t *) events[i].data.ptr;
        if (io->dead)
            continue;  //  removed by an earlier handler of this batch
        uint32_t e = events[i].events;
        unsigned what = (e & EPOLLIN ? ARB_REACTOR_READ : 0)
                        | (e & EPOLLOUT ? ARB_REACTOR_WRITE : 0)
                        | (e & EPOLLRDHUP ? ARB_REACTOR_RDHUP : 0)
                        | (e & (EPOLLERR | EPOLLHUP) ? ARB_REACTOR_HUP : 0);
        io->fn (self, io->fd, what, io->arg);
    }
    return 0;
}

//  A turn with ZeroMQ sockets: zmq_poll waits for them and for the epoll
//  descriptor, whose events are then taken without waiting. 0 or -1.
static int
s_poll_socks (arb_reactor_t *self, long wait)
{
    zmq_pollitem_t items[ARB_REACTOR_SOCKS_MAX + 1];
    size_t n = self->sock_count;
    for (size_t i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t){zsock_resolve (self->socks[i].sock), 0, ZMQ_POLLIN, 0};
    items[n] = (zmq_pollitem_t){NULL, self->epfd, ZMQ_POLLIN, 0};
    int rc = zmq_poll (items, (int) n + 1, wait);
    if (rc < 0 && zmq_errno () != EINTR) {
        zsys_error ("reactor: poll failed: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->now_ms = (uint64_t) zclock_mono ();
    if (rc > 0 && items[n].revents && s_dispatch_fds (self, 0))
        return -1;
    //  A handler above may have removed a socket: look each one up again.
    for (size_t i = 0; rc > 0 && i < n; i++)
        if (items[i].revents)
            for (size_t k = 0; k < self->sock_count; k++)
                if (zsock_resolve (self->socks[k].sock) == items[i].socket) {
                    self->socks[k].fn (self, self->socks[k].sock, self->socks[k].arg);
                    break;
                }
    return 0;
}

static void
s_fire_timers (arb_reactor_t *self)
{
    arb_timer_t *timer;
    while ((timer = (arb_timer_t *) arb_heap_peek (self->timers))
           && timer->due_ms <= self->now_ms) {
        arb_heap_pop (self->timers);
        timer->armed = false;
        timer->fn (self, timer, timer->arg);
    }
}

int
arb_reactor_run (arb_reactor_t *self)
{
    self->stopped = false;
    while (!self->stopped && !zsys_interrupted) {
        self->now_ms = (uint64_t) zclock_mono ();
        long wait = s_wait_ms (self);
        //  Without ZeroMQ sockets (the link dials its own connection to a
        //  tcp:// broker without CURVE: docs/link.md), epoll alone waits:
        //  one call a turn, not zmq_poll's poll and then epoll_wait.
        if (self->sock_count ? s_poll_socks (self, wait) : s_dispatch_fds (self, wait))
            return -1;
        s_fire_timers (self);
        s_bury (self);
    }
    return 0;
}
