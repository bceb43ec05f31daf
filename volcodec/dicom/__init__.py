"""DICOM side of volcodec.

``volcodec.dicom.series`` reads classic single-frame series, Enhanced multi-frame objects and Siemens
mosaics into stored-value integer volumes, keeping the per-frame header facts (file, frame, SOP Instance
UID, position) that transcoding needs to map frames back. pydicom and nibabel are imported lazily inside
the functions that need them, so importing this package costs nothing.
"""
