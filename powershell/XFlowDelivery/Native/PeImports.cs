using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace XFlowDelivery.Native
{
    /// <summary>
    /// The DLL names in a PE file's import directory (the Microsoft PE/COFF specification:
    /// e_lfanew at 0x3C, "PE\0\0", the optional header's data directory 1, 20-byte import
    /// descriptors whose Name is an RVA). Plain managed code, so it is tested on every platform.
    /// </summary>
    internal static class PeImports
    {
        internal static List<string> Read(string path)
        {
            var image = File.ReadAllBytes(path);
            uint U32(long offset) => offset >= 0 && offset + 4 <= image.Length
                ? BitConverter.ToUInt32(image, (int)offset)
                : throw new BadImageFormatException($"'{path}' ends inside its PE headers.");
            ushort U16(long offset) => (ushort)(U32(offset) & 0xFFFF);

            long pe = U32(0x3C);
            if (U16(0) != 0x5A4D || U32(pe) != 0x00004550) throw new BadImageFormatException($"'{path}' is not a PE file.");
            int sectionCount = U16(pe + 6);
            long optional = pe + 24;
            long sections = optional + U16(pe + 20);
            bool pe32Plus = U16(optional) == 0x20B;
            long importDirectory = optional + (pe32Plus ? 112 : 96) + 8; // data directory 1

            long FileOffset(uint rva)
            {
                for (int i = 0; i < sectionCount; i++)
                {
                    long section = sections + 40L * i;
                    uint start = U32(section + 12), size = Math.Max(U32(section + 8), U32(section + 16));
                    if (rva >= start && rva < start + size) return rva - start + U32(section + 20);
                }
                throw new BadImageFormatException($"'{path}': RVA 0x{rva:X} is in no section.");
            }

            var names = new List<string>();
            uint importRva = U32(importDirectory);
            if (importRva == 0) return names;
            for (long descriptor = FileOffset(importRva); U32(descriptor + 12) != 0; descriptor += 20)
            {
                long start = FileOffset(U32(descriptor + 12)), end = start;
                while (end < image.Length && image[end] != 0) end++;
                names.Add(Encoding.ASCII.GetString(image, (int)start, (int)(end - start)));
            }
            return names;
        }
    }
}
