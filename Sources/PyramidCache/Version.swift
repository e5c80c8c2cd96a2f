/// Pyramid's version: what `pyramid --version` prints, what every manifest records as its tool,
/// and what the C library's `pyramid_version()` returns.
public let pyramidVersion = "0.1.0"
