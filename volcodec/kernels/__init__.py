"""Pure numba kernels: binary range coder, adaptive bit models, prediction and the frame scan.

Kernels never raise and never allocate in their loops; state lives in small int64/int32 arrays
that the caller (volcodec.codec) allocates, and problems come back as status codes.
"""
