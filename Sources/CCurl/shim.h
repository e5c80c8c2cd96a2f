#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

// OpenSSL (under libcurl's TLS and its SigV4 hashing) cleans itself up at exit by default; a
// download still running on another thread then crashes in freed locks. Initialized this way
// before libcurl, it leaves its state to the process's end.
static inline int pyramid_openssl_no_atexit(void) { return OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL); }

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed
// wrapper per argument kind.
static inline CURLcode pyramid_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode pyramid_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode pyramid_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode pyramid_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode pyramid_curl_setopt_list(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*pyramid_curl_data_callback)(char *data, size_t size, size_t count, void *context);
static inline CURLcode pyramid_curl_setopt_callback(CURL *h, CURLoption o, pyramid_curl_data_callback f) { return curl_easy_setopt(h, o, f); }

static inline CURLcode pyramid_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode pyramid_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }

// MD5 of an upload's body, for its Content-MD5 header (the server refuses a body damaged on the
// way) and for comparing a stored object's ETag with the local file (OpenSSL's EVP, the library
// libcurl already loads for TLS and signing).
static inline EVP_MD_CTX *pyramid_md5_begin(void) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1) { EVP_MD_CTX_free(c); return NULL; }
    return c;
}
