// swift-tools-version:6.0
import PackageDescription

// Dependency direction (docs/design.md): pyramid → PyramidTrain → PyramidLoader → PyramidCache;
// PyramidBuild → PyramidCache + CVips; PyramidMPI → PyramidCache + Open MPI (pyramid links it; the
// others reach it only through PyramidCache's ProcessGroup). Reading a cache needs LMDB, zstd, libjpeg-turbo (TurboJPEG),
// xxHash and libcurl (remote caches) only, never libvips.
let package = Package(
    name: "Pyramid",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PyramidCache", targets: ["PyramidCache"]),
        .library(name: "PyramidBuild", targets: ["PyramidBuild"]),
        .library(name: "PyramidLoader", targets: ["PyramidLoader"]),
        .library(name: "PyramidTrain", targets: ["PyramidTrain"]),
        .library(name: "PyramidMPI", targets: ["PyramidMPI"]),
        .executable(name: "pyramid", targets: ["pyramid"]),
        .executable(name: "loader-example", targets: ["LoaderExample"]),
        // The loader as a C library (include: Sources/CPyramidABI/include/pyramid.h), for Python and others.
        .library(name: "PyramidC", type: .dynamic, targets: ["PyramidC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation` (Tools/docs); a command plugin, not linked into anything.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // vips.h needs only glib's include directories. vips.pc would give them too, but with the
        // cflags of every optional dependency it was built with, OpenEXR's -pthread among them, which
        // SwiftPM refuses with a warning for every target that depends on CVips. gobject-2.0.pc gives
        // exactly glib's two directories; the module map links libvips itself.
        .systemLibrary(name: "CVips", pkgConfig: "gobject-2.0", providers: [.apt(["libvips-dev"])]),
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CXSMM", pkgConfig: "libxsmm", providers: [.apt(["libxsmm-dev"])]),
        // libcurl and libcrypto through dlopen (loaded when a remote cache is first used): their
        // headers at build time (libcurl4-openssl-dev, libssl-dev), no link.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),

        .target(name: "PyramidCache", dependencies: ["CLMDB", "CZstd", "CTurboJPEG", "CXXHash", "CCurl"]),
        .target(name: "PyramidBuild", dependencies: ["PyramidCache", "CVips", "CZlib"]),
        .target(name: "PyramidLoader", dependencies: ["PyramidCache"]),
        // The trainer's non-GEMM hot loops in C, one version per instruction set, chosen at run time.
        .target(name: "CPyramidKernels"),
        .target(name: "PyramidTrain", dependencies: ["PyramidLoader", "PyramidCache", "COpenBLAS", "CXSMM", "CPyramidKernels"]),
        // MPI (Open MPI) behind PyramidCache's ProcessGroup: the other modules build and run without it.
        .target(name: "PyramidMPI", dependencies: ["PyramidCache", "CMPI"]),
        .executableTarget(
            name: "pyramid",
            dependencies: [
                "PyramidCache", "PyramidBuild", "PyramidLoader", "PyramidTrain", "PyramidMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // The C interface: its header (a C target of its own) and its implementation over the loader.
        .target(name: "CPyramidABI"),
        .target(name: "PyramidC", dependencies: ["CPyramidABI", "PyramidLoader", "PyramidCache"]),

        // A custom training loop that depends on the loader alone (README: "Your own trainer").
        .executableTarget(name: "LoaderExample", dependencies: ["PyramidLoader"], path: "Examples/LoaderExample"),

        // Test support without libvips (caches, IDX/CIFAR files, temporary directories), and the
        // libvips image writer apart, so that the loader's and trainer's tests do not link libvips.
        .target(name: "PyramidTestSupport", dependencies: ["PyramidCache", "PyramidLoader", "CZlib"], path: "Tests/PyramidTestSupport"),
        .target(name: "PyramidImageTestSupport", dependencies: ["PyramidTestSupport", "CVips"], path: "Tests/PyramidImageTestSupport"),
        .testTarget(name: "PyramidCacheTests", dependencies: ["PyramidCache", "PyramidTestSupport"]),
        .testTarget(name: "PyramidBuildTests", dependencies: ["PyramidBuild", "PyramidCache", "PyramidTestSupport", "PyramidImageTestSupport"]),
        .testTarget(name: "PyramidLoaderTests", dependencies: ["PyramidLoader", "PyramidCache", "PyramidTestSupport"]),
        // Fixtures/ holds data the tests read from the source tree (not bundled).
        .testTarget(name: "PyramidTrainTests", dependencies: ["PyramidTrain", "PyramidLoader", "PyramidCache", "PyramidTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "PyramidEndToEndTests", dependencies: ["PyramidCache", "PyramidBuild", "PyramidTrain", "PyramidTestSupport", "PyramidImageTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
