import CPyramidABI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import PyramidCache
import PyramidLoader
import Synchronization

/// The entry points that take no loader: versions, status names, strings, digests.

@_cdecl("pyramid_abi_version")
public func bridgeABIVersion() -> Int32 { PYRAMID_ABI_VERSION }

/// The version as a C string, made once and never freed (kept as an address: it is never written).
private let versionAddress = UInt(bitPattern: strdup(pyramidVersion))

@_cdecl("pyramid_version")
public func bridgeVersion() -> UnsafePointer<CChar>? { UnsafePointer(bitPattern: versionAddress) }

@_cdecl("pyramid_version_number")
public func bridgeVersionNumber() -> UInt32 {
    let parts = pyramidVersion.split(separator: ".").map { UInt32($0.prefix { $0.isNumber }) ?? 0 }
    return (parts.count > 0 ? parts[0] * 10_000 : 0) + (parts.count > 1 ? parts[1] * 100 : 0) + (parts.count > 2 ? parts[2] : 0)
}

/// Each status's name, static for the process's life (C string literals).
private let statusNames: [Int32: StaticString] = [
    PYRAMID_OK: "PYRAMID_OK", PYRAMID_END: "PYRAMID_END", PYRAMID_TIMEOUT: "PYRAMID_TIMEOUT",
    PYRAMID_ERROR: "PYRAMID_ERROR", PYRAMID_INVALID: "PYRAMID_INVALID",
]

@_cdecl("pyramid_status_name")
public func bridgeStatusName(_ status: Int32) -> UnsafePointer<CChar>? {
    let name: StaticString = statusNames[status] ?? "unknown status"
    return UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("pyramid_string_free")
public func bridgeStringFree(_ string: UnsafeMutablePointer<CChar>?) { free(string) }

@_cdecl("pyramid_digest")
public func bridgeDigest(_ bytes: UnsafeRawPointer?, _ length: Int) -> UInt64 {
    guard let bytes, length > 0 else { return RecordChecksum.xxh3(UnsafeRawBufferPointer(start: nil, count: 0)) }
    return RecordChecksum.xxh3(UnsafeRawBufferPointer(start: bytes, count: length))
}
