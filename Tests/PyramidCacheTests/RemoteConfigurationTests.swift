import Foundation
import PyramidCache
import PyramidTestSupport
import Testing

/// How S3 settings are resolved from the AWS files, and the seal of a published manifest.
@Suite struct RemoteConfigurationTests {
    func resolve(config: String, extra: [String: String] = [:]) throws -> S3Configuration {
        let dir = TempDirectory()
        try config.write(toFile: dir.path("config"), atomically: true, encoding: .utf8)
        var environment = ["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_CONFIG_FILE": dir.path("config"),
                           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "HOME": dir.path("home")]
        environment.merge(extra) { $1 }
        return try S3Configuration.resolve(environment: environment)
    }

    @Test func onlyTheS3BlockOfAProfileAppliesNotAnotherService() throws {
        let other = try resolve(config: "[default]\nregion = eu-west-1\ndynamodb =\n  endpoint_url = http://dynamo.local:8000\n")
        #expect(other.endpoint == "https://s3.eu-west-1.amazonaws.com", "another service's endpoint: \(other.endpoint)")
        let s3 = try resolve(config: "[default]\nendpoint_url = http://top:1\ndynamodb =\n  endpoint_url = http://dynamo:2\ns3 =\n  endpoint_url = http://s3:3\n  addressing_style = virtual\n")
        #expect(s3.endpoint == "http://s3:3" && !s3.pathStyle)
        let top = try resolve(config: "[default]\ndynamodb =\n  endpoint_url = http://dynamo:2\nendpoint_url = http://top:1\n")
        #expect(top.endpoint == "http://top:1" && top.pathStyle)
    }

    @Test func aCABundleComesFromTheEnvironmentOrTheProfileAndMustExist() throws {
        let dir = TempDirectory()
        _ = FileManager.default.createFile(atPath: dir.path("ca.pem"), contents: Data("x".utf8))
        #expect(try resolve(config: "[default]\nca_bundle = \(dir.path("ca.pem"))\n").caBundle == dir.path("ca.pem"))
        #expect(try resolve(config: "[default]\n", extra: ["AWS_CA_BUNDLE": dir.path("ca.pem")]).caBundle == dir.path("ca.pem"))
        #expect(try resolve(config: "[default]\n").caBundle == nil)
        #expect(throws: RemoteError.self) { try resolve(config: "[default]\nca_bundle = \(dir.path("none.pem"))\n") }
    }

    @Test func anEndpointsCredentialsNeverReachAMessage() {
        let c = S3Configuration(accessKey: "k", secretKey: "s", endpoint: "https://user:pa55@host:9000/")
        #expect(c.displayEndpoint == "https://***@host:9000")
        #expect(S3Configuration(accessKey: "k", secretKey: "s", endpoint: "http://host:1").displayEndpoint == "http://host:1")
    }

    @Test func aSealedManifestIsSoundAndEveryFlippedByteIsCaught() throws {
        let plain = Array(#"{"formatVersion":2,"mean":[0.2851],"shards":[]}"#.utf8)
        let sealed = ManifestSeal.seal(plain)
        #expect(ManifestSeal.check(sealed) == .sound)
        #expect(ManifestSeal.check(plain) == .unsealed)
        #expect(try JSONSerialization.jsonObject(with: Data(sealed)) is [String: Any], "still JSON")
        for i in ManifestSeal.prefixLength..<sealed.count {
            var damaged = sealed
            damaged[i] ^= 0x01
            #expect(ManifestSeal.check(damaged) != .sound, "byte \(i)")
        }
    }
}
