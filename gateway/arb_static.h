/*  arb_static.h — the dashboard's files, embedded in the binary: GET /
    serves index.html and GET /static/PATH the file PATH of gateway/static/
    as it was at build time (gateway/SConscript turns the folder into
    arb_static_files.c), so the gateway needs no files and no internet at
    run time. Open without the token: the page asks for the token itself
    to call the admin API.
*/

#ifndef ARB_STATIC_H
#define ARB_STATIC_H

#include "arb_http.h"

//  One embedded file.
typedef struct {
    const char *path;  //  relative to gateway/static/: "index.html", "js/app.js"
    const char *type;  //  its content type
    const unsigned char *data;
    size_t size;
} arb_static_file_t;

//  The files (generated; sorted by path).
extern const arb_static_file_t arb_static_files[];
extern const size_t arb_static_count;

//  The file at path, or NULL.
const arb_static_file_t *arb_static_find (const char *path);

//  Adds GET and HEAD of / and /static/** to http.
int arb_static_serve (arb_http_t *http);

#endif
