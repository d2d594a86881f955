import sealbus


def test_version_and_hierarchy() -> None:
    assert sealbus.__version__
    assert issubclass(sealbus.PolicyDenied, sealbus.SealbusError)
    assert issubclass(sealbus.KeyDestroyed, sealbus.IntegrityError)
