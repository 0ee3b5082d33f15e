"""Registry of attack / evaluation targets: landmark extractors."""
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.registry import create_extractor, extractor_info, list_extractors, register_extractor

__all__ = ["ExtractorInfo", "LandmarkExtractor", "create_extractor", "extractor_info", "list_extractors", "register_extractor"]
