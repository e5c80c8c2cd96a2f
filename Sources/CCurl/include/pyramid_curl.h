/*
 * libcurl and OpenSSL's libcrypto, loaded when a remote cache is first used (dlopen), not linked:
 * a program or Python package that reads local caches needs neither library installed, and one
 * that reads s3:// uses the system's own (its TLS stack and CA certificates, kept up to date by
 * the system). The headers give the types and constants only.
 *
 * pyramid_remote_load() loads both once (thread-safe) and says what is missing; every other
 * function here must be called only after it returned 0.
 */
#ifndef PYRAMID_CURL_H
#define PYRAMID_CURL_H

#include <stddef.h>
#include <curl/curl.h>

/* Loads libcurl ($PYRAMID_LIBCURL when set, else libcurl.so.4, else libcurl-gnutls.so.4) and libcrypto (libcrypto.so.3, else
   libcrypto.so.1.1) the first time; 0 when both are there, else -1 with a message naming the
   library and the package that provides it in `message` (NUL-terminated, at most `capacity`). */
int pyramid_remote_load(char *message, size_t capacity);

/* OpenSSL (under libcurl's TLS) cleans itself up at exit by default; a download still running on
   another thread then crashes in freed locks. Called before libcurl's global init, it leaves its
   state to the process's end. */
int pyramid_openssl_no_atexit(void);

CURLcode pyramid_curl_global_init(long flags);
CURL *pyramid_curl_easy_init(void);
void pyramid_curl_easy_cleanup(CURL *handle);
void pyramid_curl_easy_reset(CURL *handle);
CURLcode pyramid_curl_easy_perform(CURL *handle);
const char *pyramid_curl_easy_strerror(CURLcode code);
struct curl_slist *pyramid_curl_slist_append(struct curl_slist *list, const char *text);
void pyramid_curl_slist_free_all(struct curl_slist *list);

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
   wrapper per argument kind. */
CURLcode pyramid_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode pyramid_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v);
CURLcode pyramid_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode pyramid_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode pyramid_curl_setopt_list(CURL *h, CURLoption o, struct curl_slist *v);
typedef size_t (*pyramid_curl_data_callback)(char *data, size_t size, size_t count, void *context);
CURLcode pyramid_curl_setopt_callback(CURL *h, CURLoption o, pyramid_curl_data_callback f);
CURLcode pyramid_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode pyramid_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v);

/* MD5 (OpenSSL's EVP) of an upload's body, for its Content-MD5 header, and of a local file, to
   compare with a stored object's ETag. begin: NULL when OpenSSL cannot make a context. */
void *pyramid_md5_begin(void);
int pyramid_md5_update(void *context, const void *bytes, size_t count);
/* Writes the 16-byte digest into `digest` and frees the context; 1 on success. */
int pyramid_md5_finish(void *context, unsigned char digest[16]);
void pyramid_md5_free(void *context);

#endif
