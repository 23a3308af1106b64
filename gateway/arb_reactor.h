/*  arb_reactor.h — the gateway's event loop: one thread, epoll for the
    TCP listeners and connections (and the link's own connection to the
    broker), zmq_poll for ZeroMQ sockets when it has any, a heap of timers,
    and hooks that run before every sleep.

    A turn waits in epoll_wait, or in zmq_poll on the ZeroMQ sockets and
    the epoll descriptor while there are sockets, for at most the time to
    the next timer or what a prepare hook asks;
    then it calls the handlers of the ready descriptors, of the readable
    sockets and of the due timers; last, the prepare hooks, which send what
    the turn produced (a batch of submits, the link's outcomes) and say how
    long the loop may sleep. Work that arrives together therefore leaves
    together: that is what makes one SUBMIT of many items out of many
    clients' writes.

    Timers are intrusive: the caller embeds an arb_timer_t in its own
    record (a connection, a waiting request) and arms and disarms it there,
    so nothing is allocated per timer and nothing dangles when the record
    goes: disarm it before freeing the record.

    Handlers may add and remove descriptors, sockets and timers, including
    their own, at any time. A descriptor removed during a turn gets no more
    events, even if the kernel reported some for it in the same batch.

    Owned and run by one thread; not thread-safe.
*/

#ifndef ARB_REACTOR_H
#define ARB_REACTOR_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _arb_reactor_t arb_reactor_t;

#define ARB_REACTOR_READ  1u  //  readable (or a listener with a connection waiting)
#define ARB_REACTOR_WRITE 2u  //  writable
#define ARB_REACTOR_HUP   4u  //  hang-up or error: reported whatever was asked
//  The peer ended its side (a half-close, or the first sign of a close):
//  reported only if asked, as long as it holds (level-triggered), so a
//  watcher that reads to the end by itself does not ask it.
#define ARB_REACTOR_RDHUP 8u

typedef void (arb_reactor_io_fn) (arb_reactor_t *reactor, int fd, unsigned events, void *arg);
typedef void (arb_reactor_sock_fn) (arb_reactor_t *reactor, zsock_t *sock, void *arg);

//  Runs before the loop sleeps. Returns how long the loop may sleep at
//  most, in ms: 0 to run the next turn at once, -1 for no limit.
typedef int (arb_reactor_prepare_fn) (arb_reactor_t *reactor, void *arg);

typedef struct _arb_timer_t arb_timer_t;
typedef void (arb_reactor_timer_fn) (arb_reactor_t *reactor, arb_timer_t *timer, void *arg);

//  A timer, embedded in the record it belongs to. Zero it before the first
//  use; the reactor owns its fields while it is armed.
struct _arb_timer_t {
    uint64_t due_ms;  //  monotonic ms it fires at
    size_t slot;      //  position in the reactor's heap while armed
    bool armed;
    arb_reactor_timer_fn *fn;
    void *arg;
};

arb_reactor_t *arb_reactor_new (void);

//  Destroys the reactor. Descriptors, sockets and timers stay their
//  owners' (nothing is closed). Accepts NULL; nulls *self_p.
void arb_reactor_destroy (arb_reactor_t **self_p);

//  Watches fd for events (ARB_REACTOR_READ, _WRITE and/or _RDHUP); fn is
//  called with the events that happened. Returns 0, or -1 if epoll refused it (errno).
int
arb_reactor_add_fd (arb_reactor_t *self, int fd, unsigned events, arb_reactor_io_fn *fn, void *arg);

//  Changes what fd is watched for. Returns 0 or -1.
int arb_reactor_watch_fd (arb_reactor_t *self, int fd, unsigned events);

//  Stops watching fd (before the caller closes it). Accepts an fd that is
//  not watched.
void arb_reactor_remove_fd (arb_reactor_t *self, int fd);

//  Calls fn when sock is readable (ZeroMQ sockets: level-triggered through
//  zmq_poll). At most ARB_REACTOR_SOCKS_MAX sockets (the link, and one per
//  upstream bridge).
#define ARB_REACTOR_SOCKS_MAX 40
int arb_reactor_add_sock (arb_reactor_t *self, zsock_t *sock, arb_reactor_sock_fn *fn, void *arg);
void arb_reactor_remove_sock (arb_reactor_t *self, zsock_t *sock);

//  Adds a hook that runs before every sleep (at most ARB_REACTOR_HOOKS_MAX).
#define ARB_REACTOR_HOOKS_MAX 8
int arb_reactor_add_prepare (arb_reactor_t *self, arb_reactor_prepare_fn *fn, void *arg);

//  Arms timer to fire once, delay_ms from now (the monotonic clock read
//  at the call; re-arming an armed timer moves it). Disarming an idle timer does nothing.
void arb_reactor_arm (arb_reactor_t *self,
                      arb_timer_t *timer,
                      uint64_t delay_ms,
                      arb_reactor_timer_fn *fn,
                      void *arg);
void arb_reactor_disarm (arb_reactor_t *self, arb_timer_t *timer);

//  Monotonic ms of the current turn (read once per turn).
uint64_t arb_reactor_now (arb_reactor_t *self);

//  Runs turns until arb_reactor_stop or SIGINT/SIGTERM (czmq's
//  zsys_interrupted). Returns 0, or -1 if polling failed.
int arb_reactor_run (arb_reactor_t *self);

//  Makes arb_reactor_run return after the current turn.
void arb_reactor_stop (arb_reactor_t *self);

#endif
