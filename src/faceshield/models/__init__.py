"""One registry of attack / evaluation targets: landmark extractors, manipulators, detectors."""
from faceshield.models.base import ExtractorInfo, LandmarkExtractor
from faceshield.models.manipulator import DeepfakeDetector, Manipulator, TargetInfo
from faceshield.models.registry import create_extractor, create_target, extractor_info, list_extractors, list_targets, register_extractor, register_target, target_info

__all__ = ["DeepfakeDetector", "ExtractorInfo", "LandmarkExtractor", "Manipulator", "TargetInfo", "create_extractor", "create_target", "extractor_info",
           "list_extractors", "list_targets", "register_extractor", "register_target", "target_info"]
