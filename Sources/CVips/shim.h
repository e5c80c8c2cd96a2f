// Fixed-arity wrappers over libvips' varargs API, which Swift cannot call.
// Each wrapper names the options it fixes and holds no logic of its own.
#include <vips/vips.h>
#include <vips/vector.h>

// vips_init, then libvips single-threaded per call (the build spreads work by
// image over its own worker threads), no operation cache (every image is new), and no liborc
// vector code: Debian's liborc 0.4.33 crashed the build now and then when two worker threads
// compiled programs at once (a segfault inside liborc, about one build of 2,000 photos in five),
// and compiling a program for every image's resize cost about as much as the vector code saved.
// Sends libvips' g_log warnings and criticals (domain VIPS) to `handler` instead of standard error
// (its info and debug messages stay with GLib's default handler, which hides them).
static inline void pyr_vips_capture_warnings(GLogFunc handler) {
    g_log_set_handler("VIPS", (GLogLevelFlags)(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION),
                      handler, NULL);
}

static inline int pyr_vips_init(void) {
    if (VIPS_INIT("pyramid")) return -1;
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    vips_vector_set_enabled(FALSE);
    return 0;
}

// Opens an encoded image held in memory lazily (only the header is parsed), sequential access,
// fail_on=error so that a truncated or damaged file fails when its pixels are computed.
// jpeg_shrink > 1 asks libjpeg to decode at 1/2, 1/4 or 1/8 size (shrink-on-load); only valid
// for JPEG. (Sniffing a buffer asks only the in-memory loaders, not every file loader.)
static inline VipsImage *pyr_vips_load_buffer(const void *buf, size_t len, int jpeg_shrink) {
    if (jpeg_shrink > 1)
        return vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                          "fail_on", VIPS_FAIL_ON_ERROR, "shrink", jpeg_shrink, NULL);
    return vips_image_new_from_buffer(buf, len, "", "access", VIPS_ACCESS_SEQUENTIAL,
                                      "fail_on", VIPS_FAIL_ON_ERROR, NULL);
}

// The name of the loader libvips would use for this buffer (e.g. "jpegload_buffer"), or NULL.
static inline const char *pyr_vips_loader_name(const void *buf, size_t len) {
    return vips_foreign_find_load_buffer(buf, len);
}

// Turns an image upright by its EXIF orientation (and drops the tag); a copy when there is none.
static inline int pyr_vips_autorot(VipsImage *in, VipsImage **out) {
    return vips_autorot(in, out, NULL);
}

// vips_resize with the linear kernel (a triangle filter, stretched when shrinking: antialiased
// bilinear, the loader's own resampling filter) and gap=0 (no integer block-shrink first, so the
// result of a tile in a mosaic depends only on that tile and its padding).
static inline int pyr_vips_resize(VipsImage *in, VipsImage **out, double hscale, double vscale) {
    return vips_resize(in, out, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_LINEAR, "gap", 0.0, NULL);
}

static inline int pyr_vips_colourspace(VipsImage *in, VipsImage **out, VipsInterpretation space) {
    return vips_colourspace(in, out, space, NULL);
}

// Flatten alpha onto a white background (8-bit images: max_alpha 255).
static inline int pyr_vips_flatten_white(VipsImage *in, VipsImage **out) {
    double white[3] = {255.0, 255.0, 255.0};
    VipsArrayDouble *bg = vips_array_double_new(white, 3);
    int rc = vips_flatten(in, out, "background", bg, NULL);
    vips_area_unref(VIPS_AREA(bg));
    return rc;
}

static inline int pyr_vips_cast_uchar(VipsImage *in, VipsImage **out) {
    return vips_cast(in, out, VIPS_FORMAT_UCHAR, NULL);
}

static inline int pyr_vips_extract_band(VipsImage *in, VipsImage **out, int band, int n) {
    return vips_extract_band(in, out, band, "n", n, NULL);
}

// Wraps caller-owned interleaved 8-bit pixels; no copy, so the memory must outlive the image.
static inline VipsImage *pyr_vips_image_from_u8(const void *data, size_t size, int width, int height, int bands) {
    return vips_image_new_from_memory(data, size, width, height, bands, VIPS_FORMAT_UCHAR);
}

// PNG with default compression, into a buffer the caller frees with g_free.
static inline int pyr_vips_pngsave_buffer(VipsImage *in, void **buf, size_t *len) {
    return vips_pngsave_buffer(in, buf, len, NULL);
}

/* vips_svgload_buffer with default options (charts drawn as SVG, saved as PNG). */
static inline int pyr_vips_svgload_buffer(void *buf, size_t len, VipsImage **out) {
    return vips_svgload_buffer(buf, len, out, NULL);
}

static inline int pyr_vips_width(VipsImage *in) { return vips_image_get_width(in); }
static inline int pyr_vips_height(VipsImage *in) { return vips_image_get_height(in); }
static inline int pyr_vips_bands(VipsImage *in) { return vips_image_get_bands(in); }
static inline int pyr_vips_hasalpha(VipsImage *in) { return vips_image_hasalpha(in); }
static inline VipsInterpretation pyr_vips_interpretation(VipsImage *in) { return vips_image_get_interpretation(in); }
static inline VipsBandFormat pyr_vips_format(VipsImage *in) { return vips_image_get_format(in); }
static inline void pyr_vips_unref(VipsImage *in) { g_object_unref(in); }
static inline void pyr_g_free(void *p) { g_free(p); }

// vips_copy that only relabels the interpretation (no pixel change), e.g. raw 3-band memory as sRGB.
static inline int pyr_vips_copy_interpretation(VipsImage *in, VipsImage **out, VipsInterpretation space) {
    return vips_copy(in, out, "interpretation", space, NULL);
}

// Returns the error buffer as a new string (g_free it) and clears it.
static inline char *pyr_vips_error_take(void) { return vips_error_buffer_copy(); }
// Empties the error buffer (a decode starts from a clean one, so an older message is not its reason).
static inline void pyr_vips_error_clear(void) { vips_error_clear(); }
// Whether a header field exists (0: absent), without setting an error as vips_image_get_int does.
static inline int pyr_vips_has_field(VipsImage *in, const char *name) { return vips_image_get_typeof(in, name) != 0; }
static inline void pyr_vips_thread_shutdown(void) { vips_thread_shutdown(); }

// Saves by file suffix; options may follow the name in brackets, e.g. "a.jpg[Q=90,interlace]".
static inline int pyr_vips_save(VipsImage *in, const char *path) {
    return vips_image_write_to_file(in, path, NULL);
}

// Appends one constant band (e.g. an alpha channel).
static inline int pyr_vips_bandjoin_const1(VipsImage *in, VipsImage **out, double value) {
    return vips_bandjoin_const1(in, out, value, NULL);
}

static inline int pyr_vips_cast(VipsImage *in, VipsImage **out, VipsBandFormat format) {
    return vips_cast(in, out, format, NULL);
}

// Multiplies every band by a constant (e.g. 257 to widen 8-bit values to 16-bit).
static inline int pyr_vips_linear1(VipsImage *in, VipsImage **out, double a, double b) {
    return vips_linear1(in, out, a, b, NULL);
}

// Computes columns left ..< left+width of every row in the calling thread, in strips of `strip`
// rows from the top (what the pipeline's sequential loaders and line caches expect), without a
// libvips threadpool and so without hand-offs between threads, copying them into dst. Columns
// outside the window are not computed (a resize computes only what is asked for); every row is,
// so a decode failure anywhere in the image is still seen.
// Returns -1 on error (including a decode failure) or when dst is too small.
static inline int pyr_vips_fetch_columns(VipsImage *in, void *dst, size_t size, int strip, int left, int width) {
    size_t pixel = VIPS_IMAGE_SIZEOF_PEL(in), line = pixel * (size_t)width;
    if (left < 0 || width < 1 || left + width > in->Xsize || size < line * (size_t)in->Ysize) return -1;
    VipsRegion *region = vips_region_new(in);
    if (!region) return -1;
    for (int top = 0; top < in->Ysize; top += strip) {
        VipsRect r = {left, top, width, VIPS_MIN(strip, in->Ysize - top)};
        if (vips_region_prepare(region, &r)) { g_object_unref(region); return -1; }
        for (int y = r.top; y < r.top + r.height; y++)
            memcpy((char *)dst + (size_t)y * line, VIPS_REGION_ADDR(region, left, y), line);
    }
    g_object_unref(region);
    return 0;
}

// The whole image (see pyr_vips_fetch_columns).
static inline int pyr_vips_fetch(VipsImage *in, void *dst, size_t size, int strip) {
    return pyr_vips_fetch_columns(in, dst, size, strip, 0, in->Xsize);
}

