"""BGP speakers and peers, and the BgpSpeakerSpecs computed from the RouterSpecs."""
