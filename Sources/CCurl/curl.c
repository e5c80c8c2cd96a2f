// libcurl and libcrypto through dlopen: see include/pyramid_curl.h.
#include "pyramid_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    int (*init_crypto)(uint64_t, const OPENSSL_INIT_SETTINGS *);
    EVP_MD_CTX *(*md_ctx_new)(void);
    void (*md_ctx_free)(EVP_MD_CTX *);
    const EVP_MD *(*md5)(void);
    int (*digest_init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
    int (*digest_update)(EVP_MD_CTX *, const void *, size_t);
    int (*digest_final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];

static void *open_first(const char *const *names, const char *package) {
    const char *error = "";
    for (const char *const *n = names; *n; n++) {
        void *library = dlopen(*n, RTLD_NOW | RTLD_LOCAL);
        if (library) return library;
        error = dlerror();
    }
    snprintf(failure, sizeof failure, "s3:// needs %s at run time and it cannot be loaded (%s); install %s", names[0], error, package);
    return NULL;
}

#define FIND(library, field, symbol)                                                                     \
    do {                                                                                                 \
        *(void **)&api.field = dlsym(library, symbol);                                                   \
        if (!api.field) {                                                                                \
            snprintf(failure, sizeof failure, "s3://: the loaded libcurl/libcrypto has no %s", symbol); \
            return;                                                                                      \
        }                                                                                                \
    } while (0)

static void load(void) {
    static const char *curl_names[] = {"libcurl.so.4", "libcurl-gnutls.so.4", NULL};
    static const char *const crypto_names[] = {"libcrypto.so.3", "libcrypto.so.1.1", NULL};
    const char *chosen = getenv("PYRAMID_LIBCURL");  // a libcurl elsewhere (path or name): only that one
    if (chosen && *chosen) { curl_names[0] = chosen; curl_names[1] = NULL; }
    void *curl = open_first(curl_names, "libcurl (Debian/Ubuntu: apt install libcurl4; Fedora/RHEL: dnf install libcurl)");
    if (!curl) return;
    void *crypto = open_first(crypto_names, "OpenSSL's libcrypto (Debian/Ubuntu: apt install libssl3; Fedora/RHEL: dnf install openssl-libs)");
    if (!crypto) return;
    FIND(curl, global_init, "curl_global_init");
    FIND(curl, easy_init, "curl_easy_init");
    FIND(curl, easy_cleanup, "curl_easy_cleanup");
    FIND(curl, easy_reset, "curl_easy_reset");
    FIND(curl, easy_perform, "curl_easy_perform");
    FIND(curl, easy_strerror, "curl_easy_strerror");
    FIND(curl, easy_setopt, "curl_easy_setopt");
    FIND(curl, easy_getinfo, "curl_easy_getinfo");
    FIND(curl, slist_append, "curl_slist_append");
    FIND(curl, slist_free_all, "curl_slist_free_all");
    FIND(crypto, init_crypto, "OPENSSL_init_crypto");
    FIND(crypto, md_ctx_new, "EVP_MD_CTX_new");
    FIND(crypto, md_ctx_free, "EVP_MD_CTX_free");
    FIND(crypto, md5, "EVP_md5");
    FIND(crypto, digest_init, "EVP_DigestInit_ex");
    FIND(crypto, digest_update, "EVP_DigestUpdate");
    FIND(crypto, digest_final, "EVP_DigestFinal_ex");
    failure[0] = 0;
}

int pyramid_remote_load(char *message, size_t capacity) {
    failure[0] = 1;  // until load() has run to its end
    pthread_once(&once, load);
    if (failure[0] == 0) return 0;
    if (message && capacity) snprintf(message, capacity, "%s", failure);
    return -1;
}

int pyramid_openssl_no_atexit(void) { return api.init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL); }
CURLcode pyramid_curl_global_init(long flags) { return api.global_init(flags); }
CURL *pyramid_curl_easy_init(void) { return api.easy_init(); }
void pyramid_curl_easy_cleanup(CURL *h) { api.easy_cleanup(h); }
void pyramid_curl_easy_reset(CURL *h) { api.easy_reset(h); }
CURLcode pyramid_curl_easy_perform(CURL *h) { return api.easy_perform(h); }
const char *pyramid_curl_easy_strerror(CURLcode code) { return api.easy_strerror(code); }
struct curl_slist *pyramid_curl_slist_append(struct curl_slist *l, const char *t) { return api.slist_append(l, t); }
void pyramid_curl_slist_free_all(struct curl_slist *l) { api.slist_free_all(l); }

CURLcode pyramid_curl_setopt_long(CURL *h, CURLoption o, long v) { return api.easy_setopt(h, o, v); }
CURLcode pyramid_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return api.easy_setopt(h, o, v); }
CURLcode pyramid_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return api.easy_setopt(h, o, v); }
CURLcode pyramid_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return api.easy_setopt(h, o, v); }
CURLcode pyramid_curl_setopt_list(CURL *h, CURLoption o, struct curl_slist *v) { return api.easy_setopt(h, o, v); }
CURLcode pyramid_curl_setopt_callback(CURL *h, CURLoption o, pyramid_curl_data_callback f) { return api.easy_setopt(h, o, f); }
CURLcode pyramid_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return api.easy_getinfo(h, i, v); }
CURLcode pyramid_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return api.easy_getinfo(h, i, v); }

void *pyramid_md5_begin(void) {
    EVP_MD_CTX *c = api.md_ctx_new();
    if (c && api.digest_init(c, api.md5(), NULL) != 1) { api.md_ctx_free(c); return NULL; }
    return c;
}
int pyramid_md5_update(void *c, const void *bytes, size_t count) { return api.digest_update(c, bytes, count); }
int pyramid_md5_finish(void *c, unsigned char digest[16]) {
    unsigned int length = 0;
    int ok = api.digest_final(c, digest, &length) == 1 && length == 16;
    api.md_ctx_free(c);
    return ok;
}
void pyramid_md5_free(void *c) { api.md_ctx_free(c); }
