"""Reference exclusive C14N for the differential test (tests/c14n_sec.rs): libxml2.

    python reference_c14n.py CASES_JSON  →  JSON {case name: {"ok": base64} | {"error": text}}

Each case names a corpus file, the element to canonicalize (`apex`: its index among the
document's elements in document order, 0 = the root), with or without comments, and the
InclusiveNamespaces prefixes. The canonical form is lxml's
`etree.tostring(node, method="c14n", exclusive=True, with_comments=…, inclusive_ns_prefixes=…)`.
lxml silently drops every inclusive prefix that is not a name in the document's dictionary,
so "#default" never reaches libxml2 through it; cases naming "#default" therefore go to
libxml2 itself (the system libxml2 through ctypes) with the document subset as an XPath
node-set, which is how xmlsec1 canonicalizes a Reference. `"oracle"` in the output says which.
"""
import base64
import ctypes
import ctypes.util
import json
import os
import sys

from lxml import etree

here = os.path.dirname(os.path.abspath(__file__))
PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True,
                         remove_blank_text=False, huge_tree=False)


def by_lxml(data, apex, comments, inclusive):
    root = etree.fromstring(data, PARSER)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    return etree.tostring(elements[apex], method="c14n", exclusive=True,
                          with_comments=comments, inclusive_ns_prefixes=inclusive or None)


_lib = None


def libxml2():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(ctypes.util.find_library("xml2") or "libxml2.so.2")
        lib.xmlReadMemory.restype = ctypes.c_void_p
        lib.xmlReadMemory.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_int]
        lib.xmlXPathNewContext.restype = ctypes.c_void_p
        lib.xmlXPathNewContext.argtypes = [ctypes.c_void_p]
        lib.xmlXPathEvalExpression.restype = ctypes.c_void_p
        lib.xmlXPathEvalExpression.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.xmlC14NDocDumpMemory.restype = ctypes.c_int
        lib.xmlC14NDocDumpMemory.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_void_p)]
        lib.xmlFreeDoc.argtypes = [ctypes.c_void_p]
        _lib = lib
    return _lib


def by_libxml2_nodeset(data, apex, comments, inclusive):
    lib = libxml2()
    doc = lib.xmlReadMemory(data, len(data), b"corpus.xml", None, 2048)  # XML_PARSE_NONET
    if not doc:
        raise ValueError("libxml2 does not parse it")
    try:
        ctx = lib.xmlXPathNewContext(doc)
        expr = ("(//. | //@* | //namespace::*)[ancestor-or-self::*"
                f"[count(preceding::*) + count(ancestor::*) = {apex}]]").encode()
        obj = lib.xmlXPathEvalExpression(expr, ctx)
        if not obj:
            raise ValueError("xpath failed")
        nodeset = ctypes.c_void_p.from_address(obj + 8).value  # xmlXPathObject.nodesetval
        prefixes = (ctypes.c_char_p * (len(inclusive) + 1))(*[p.encode() for p in inclusive], None)
        out = ctypes.c_void_p()
        n = lib.xmlC14NDocDumpMemory(doc, nodeset, 1, prefixes if inclusive else None,
                                     1 if comments else 0, ctypes.byref(out))
        if n < 0:
            raise ValueError("C14N failed")
        return ctypes.string_at(out, n)
    finally:
        lib.xmlFreeDoc(doc)


def main():
    cases = json.load(open(sys.argv[1]))
    result = {}
    for case in cases:
        with open(os.path.join(here, case["file"]), "rb") as f:
            data = f.read()
        inclusive = case.get("inclusive", [])
        comments = case.get("comments", False)
        oracle = "libxml2 node-set" if "#default" in inclusive else "lxml"
        fn = by_libxml2_nodeset if "#default" in inclusive else by_lxml
        try:
            out = fn(data, case.get("apex", 0), comments, inclusive)
            result[case["name"]] = {"ok": base64.b64encode(out).decode(), "oracle": oracle}
        except Exception as e:  # noqa: BLE001 - a refusal is a result
            result[case["name"]] = {"error": f"{type(e).__name__}: {e}", "oracle": oracle}
    json.dump(result, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
