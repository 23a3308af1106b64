/*  fuzz_pair.h — what the fuzz targets of our own ZMTP readers
    (fuzz_wire, fuzz_dial) do with the socket pair an input goes through:
    the input written into one end, then that end's output shut; what the
    reader wrote back read and dropped.
*/

#ifndef FUZZ_PAIR_H
#define FUZZ_PAIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

//  Writes the input (small, libFuzzer's -max_len: the socket's buffer
//  takes it whole), then ends the stream.
static inline void
fuzz_pair_feed (int fd, const uint8_t *data, size_t size)
{
    size_t written = 0;
    while (written < size) {
        ssize_t n = write (fd, data + written, size - written);
        if (n <= 0)
            break;
        written += (size_t) n;
    }
    shutdown (fd, SHUT_WR);
}

//  Reads and drops what the reader wrote (so that its output is taken).
static inline void
fuzz_pair_drain (int fd)
{
    uint8_t buf[4096];
    while (read (fd, buf, sizeof (buf)) > 0)
        ;
}

#endif
