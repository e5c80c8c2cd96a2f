#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Where requests go and how they are signed, resolved as the AWS tools resolve them.
///
/// - Credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), else the
///   profile `AWS_PROFILE` (or `default`) in `AWS_SHARED_CREDENTIALS_FILE` (`~/.aws/credentials`),
///   then in `AWS_CONFIG_FILE` (`~/.aws/config`). None found is an error: nothing is sent unsigned.
/// - Region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`.
/// - Endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `s3 =` block's
///   `endpoint_url`, the profile's `endpoint_url`, else AWS
///   (`https://s3.REGION.amazonaws.com`, virtual-hosted buckets). A custom endpoint (an
///   S3-compatible server) is addressed path-style (`ENDPOINT/bucket/key`) unless the profile says
///   `addressing_style = virtual`. Other services' blocks (`dynamodb =`…) are ignored.
/// - Certificates: `AWS_CA_BUNDLE`, else the profile's `ca_bundle` (a PEM file or a directory),
///   else the system's.
public struct S3Configuration: Sendable, Equatable {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String?
    public var region: String
    /// Scheme, host and port, without a trailing `/`.
    public var endpoint: String
    public var pathStyle: Bool
    /// Certificates that HTTPS endpoints are checked against instead of the system's: a PEM
    /// file, or a directory of hashed certificates (OpenSSL's `c_rehash` layout).
    public var caBundle: String?

    public init(accessKey: String, secretKey: String, sessionToken: String? = nil, region: String = "us-east-1",
                endpoint: String? = nil, pathStyle: Bool? = nil) {
        self.accessKey = accessKey; self.secretKey = secretKey; self.sessionToken = sessionToken; self.region = region
        let custom = endpoint.map { Self.trimmed($0) }
        self.endpoint = custom ?? "https://s3.\(region).amazonaws.com"
        self.pathStyle = pathStyle ?? (custom != nil)
    }

    /// The endpoint as messages show it: any `user:password@` in it is replaced by `***@`.
    public var displayEndpoint: String {
        guard let scheme = endpoint.firstRange(of: "://") else { return endpoint }
        let rest = endpoint[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" }
        guard let at = authority.lastIndex(of: "@") else { return endpoint }
        return endpoint[..<scheme.upperBound] + "***" + endpoint[at...]
    }

    private static func trimmed(_ url: String) -> String {
        var s = url
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }

    /// Resolves the configuration from `environment` and the AWS files.
    /// - Throws: ``RemoteError/missingCredentials(reason:)``.
    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Configuration {
        let home = homeDirectory(environment)
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? home + "/.aws/credentials"
        let configFile = environment["AWS_CONFIG_FILE"] ?? home + "/.aws/config"
        let credentials = iniSections(credentialsFile)[profile] ?? [:]
        let config = iniSections(configFile)[profile == "default" ? "default" : "profile " + profile]
            ?? iniSections(configFile)[profile] ?? [:]
        func nonEmpty(_ s: String?) -> String? { s.flatMap { $0.isEmpty ? nil : $0 } }

        let access: String, secret: String, token: String?
        if let a = nonEmpty(environment["AWS_ACCESS_KEY_ID"]), let s = nonEmpty(environment["AWS_SECRET_ACCESS_KEY"]) {
            access = a; secret = s; token = nonEmpty(environment["AWS_SESSION_TOKEN"])
        } else if let a = nonEmpty(credentials["aws_access_key_id"]), let s = nonEmpty(credentials["aws_secret_access_key"]) {
            access = a; secret = s; token = nonEmpty(credentials["aws_session_token"])
        } else if let a = nonEmpty(config["aws_access_key_id"]), let s = nonEmpty(config["aws_secret_access_key"]) {
            access = a; secret = s; token = nonEmpty(config["aws_session_token"])
        } else {
            throw RemoteError.missingCredentials(
                reason: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile \"\(profile)\" keys in \(credentialsFile)")
        }
        let region = nonEmpty(environment["AWS_REGION"]) ?? nonEmpty(environment["AWS_DEFAULT_REGION"]) ?? nonEmpty(config["region"]) ?? "us-east-1"
        let endpoint = nonEmpty(environment["AWS_ENDPOINT_URL_S3"]) ?? nonEmpty(environment["AWS_ENDPOINT_URL"])
            ?? nonEmpty(config["s3.endpoint_url"]) ?? nonEmpty(config["endpoint_url"])
        let style = (config["s3.addressing_style"] ?? config["addressing_style"]).map { $0 == "path" }
        var resolved = S3Configuration(accessKey: access, secretKey: secret, sessionToken: token, region: region,
                                       endpoint: endpoint, pathStyle: style)
        if let bundle = nonEmpty(environment["AWS_CA_BUNDLE"]) ?? nonEmpty(config["ca_bundle"]) {
            var info = stat()
            guard stat(bundle, &info) == 0 else {
                throw RemoteError.local(path: bundle, reason: "the CA bundle (\(environment["AWS_CA_BUNDLE"] != nil ? "AWS_CA_BUNDLE" : "ca_bundle in \(configFile)")) cannot be read: \(String(cString: strerror(errno)))")
            }
            resolved.caBundle = bundle
        }
        return resolved
    }

    /// The sections of an INI file (`[name]`, `key = value`), or none when the file cannot be read.
    /// The keys of a nested `s3 =` block are kept as `s3.KEY`; other services' blocks
    /// (`dynamodb =`…) are left out.
    static func iniSections(_ path: String) -> [String: [String: String]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var sections: [String: [String: String]] = [:]
        var current: String?
        var nested: String?  // the block (`s3 =`, `dynamodb =`) indented lines belong to
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            let indented = raw.first == " " || raw.first == "\t"
            if !indented { nested = nil }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingBlanks()
                continue
            }
            guard let name = current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingBlanks().lowercased()
            let value = line[line.index(after: eq)...].trimmingBlanks()
            if value.isEmpty {
                if !indented { nested = key }
                continue
            }
            if indented, let block = nested {
                // Only the s3 block concerns us; another service's settings never apply to S3.
                if block == "s3" { sections[name, default: [:]]["s3." + key] = value }
            } else {
                sections[name, default: [:]][key] = value
            }
        }
        return sections
    }

    /// The URL of `key` in `bucket`, each path segment percent-encoded.
    func url(bucket: String, key: String) -> String {
        let encoded = key.split(separator: "/", omittingEmptySubsequences: false).map { Self.encode(String($0)) }.joined(separator: "/")
        if pathStyle { return "\(endpoint)/\(bucket)/\(encoded)" }
        guard let scheme = endpoint.firstRange(of: "://") else { return "\(endpoint)/\(bucket)/\(encoded)" }
        return endpoint[..<scheme.upperBound] + bucket + "." + endpoint[scheme.upperBound...] + "/" + encoded
    }

    /// RFC 3986 encoding of one path segment, as SigV4 canonicalizes it.
    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            default:
                out += "%" + hexDigits([b]).uppercased()
            }
        }
        return out
    }
}
